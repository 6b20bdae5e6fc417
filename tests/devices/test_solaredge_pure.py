"""SolarEdge payload parsing and register writes, without a socket."""

from datetime import UTC, datetime

import pytest

from devices.base import BatteryMode, SetBatteryMode, SetReserve, SetSchedule
from devices.errors import BadPayload, NotSupported
from devices.solaredge import registers as R
from devices.solaredge.adapter import parse_state, verify, writes_for

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)


def blocks(dc=(250, 1), meter=(-1200, 0), rated=9700.0, se_battery=-1500.0, soe=55.5, control=None):
    inv = [0] * R.INVERTER_BLOCK[1]
    inv[0] = 103
    inv[R.I_DC_POWER - R.INVERTER_BLOCK[0]] = dc[0] & 0xFFFF
    inv[R.I_DC_POWER_SF - R.INVERTER_BLOCK[0]] = dc[1] & 0xFFFF
    m = [meter[0] & 0xFFFF, 0, 0, 0, meter[1] & 0xFFFF]
    state = [0] * R.BATTERY_STATE_BLOCK[1]
    state[0:2] = R.f32(se_battery)
    state[R.BATTERY_SOE - R.BATTERY_POWER : R.BATTERY_SOE - R.BATTERY_POWER + 2] = R.f32(soe)
    ctl = control or [1] + [0] * 13
    return inv, m, R.f32(rated), state, ctl


def test_scale_factors_and_sign_conventions():
    s = parse_state(*blocks(), NOW)
    # DC 250 x 10^1 W = 2500 W; SolarEdge battery -1500 W means discharging -> ours +1500.
    assert s.battery_w == 1500
    assert s.pv_w == pytest.approx(1000)  # DC bus minus battery contribution
    assert s.grid_w == 1200  # meter -1200 (importing) -> ours +1200
    assert s.load_w == pytest.approx(3700)
    assert s.battery_capacity_kwh == pytest.approx(9.7)
    assert s.battery_soc_pct == pytest.approx(55.5)
    assert s.mode == BatteryMode.SELF_USE


def test_negative_scale_factor():
    s = parse_state(*blocks(dc=(12345, -1), se_battery=0.0), NOW)
    assert s.pv_w == pytest.approx(1234.5)


@pytest.mark.parametrize("bad", [dict(soe=140.0), dict(rated=0.0), dict(dc=(0x8000, 0))])
def test_implausible_payloads_are_bad_payload(bad):
    with pytest.raises(BadPayload):
        parse_state(*blocks(**bad), NOW)


def test_float32_is_low_word_first():
    assert R.f32(1.0) == [0x0000, 0x3F80]
    assert R.read_f32([0x0000, 0x3F80], 0) == 1.0


def test_force_charge_writes_remote_control_registers():
    ws = writes_for(SetBatteryMode(BatteryMode.FORCE_CHARGE, 2500))
    by = {w.address: w.values for w in ws}
    assert by[R.STORAGE_CONTROL_MODE] == (4,)
    assert by[R.COMMAND_MODE] == (R.CommandMode.CHARGE_PV_AND_AC,)
    assert R.read_f32(by[R.CHARGE_LIMIT], 0) == 2500.0
    assert by[R.COMMAND_TIMEOUT] == (3600, 0)


def test_reserve_and_unsupported_schedule():
    (w,) = writes_for(SetReserve(20))
    assert w.address == R.BACKUP_RESERVE and R.read_f32(w.values, 0) == 20.0
    with pytest.raises(NotSupported):
        writes_for(SetSchedule(()))


def test_writes_outside_the_control_block_are_refused():
    with pytest.raises(ValueError, match="not writable"):
        R.checked([R.Write(R.I_AC_POWER, (1,))])


def test_verify_spots_an_ignored_write():
    ws = writes_for(SetBatteryMode(BatteryMode.HOLD))
    control = [1] + [0] * 13
    r = verify("cmd", ws, control)
    assert not r.honoured and "0xE004" in r.detail
