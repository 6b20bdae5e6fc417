"""One contract for every inverter adapter, run against its simulator over a real socket."""

from datetime import UTC, datetime

import pytest

from core.clock import ManualClock
from devices.base import BatteryMode, SetBatteryMode, SetReserve
from devices.errors import AuthenticationFailed, BadPayload, DeviceUnavailable
from tests.devices.harness import BRANDS, make_pair

# Winter midday-ish: little PV, so forced modes show clearly on the grid meter.
T0 = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)


@pytest.fixture(params=BRANDS)
async def pair(request):
    p = await make_pair(request.param, ManualClock(T0))
    try:
        yield p
    finally:
        await p.close()


async def test_reads_a_sane_state(pair):
    s = await pair.adapter.read_state()
    assert 0 <= s.battery_soc_pct <= 100
    assert s.battery_capacity_kwh == pytest.approx(pair.world.battery.capacity_kwh, rel=0.01)
    assert s.measured_at == pair.clock.now()
    assert s.load_w == pytest.approx(s.pv_w + s.grid_w + s.battery_w, abs=60)
    assert s.mode == BatteryMode.SELF_USE


def need(pair, mode):
    if mode not in pair.modes:
        pytest.skip(f"{pair.brand} cannot be put in {mode}")


async def test_force_charge_raises_soc_and_imports(pair):
    need(pair, BatteryMode.FORCE_CHARGE)
    pair.world.battery.soc_kwh = 3.0
    before = await pair.adapter.read_state()
    result = await pair.adapter.apply(SetBatteryMode(BatteryMode.FORCE_CHARGE, 2500))
    assert result.honoured, result.detail
    pair.clock.advance(30 * 60)
    after = await pair.adapter.read_state()
    assert after.battery_soc_pct > before.battery_soc_pct + 10  # ~1.19 kWh into 9.5 kWh
    assert after.mode == BatteryMode.FORCE_CHARGE
    # Brands that cannot set a charge power charge at the battery's own limit.
    limit = pair.world.battery.max_charge_w
    expected = min(2500, limit) if pair.power_settable else limit
    assert after.battery_w == pytest.approx(-expected, abs=60)
    assert after.grid_w > 2000


async def test_force_discharge_exports(pair):
    need(pair, BatteryMode.FORCE_DISCHARGE)
    result = await pair.adapter.apply(SetBatteryMode(BatteryMode.FORCE_DISCHARGE, 3000))
    assert result.honoured, result.detail
    pair.clock.advance(10 * 60)
    s = await pair.adapter.read_state()
    assert s.grid_w < -1000
    assert s.battery_w == pytest.approx(min(3000, pair.world.battery.max_discharge_w), abs=60)


async def test_reserve_change_and_back_to_self_use(pair):
    assert (await pair.adapter.apply(SetReserve(35))).honoured
    if BatteryMode.FORCE_DISCHARGE in pair.modes:
        forced = SetBatteryMode(BatteryMode.FORCE_DISCHARGE, 3000)
        assert (await pair.adapter.apply(forced)).honoured
    assert (await pair.adapter.apply(SetBatteryMode(BatteryMode.SELF_USE))).honoured
    pair.clock.advance(60)
    s = await pair.adapter.read_state()
    assert s.reserve_pct == pytest.approx(35, abs=0.5)
    assert s.mode == BatteryMode.SELF_USE
    assert pair.world.reserve_pct == pytest.approx(35, abs=0.5)


FAULTS = {
    "refuse_connections": DeviceUnavailable,
    "hang": DeviceUnavailable,
    "malformed": BadPayload,
    "expire_token": AuthenticationFailed,
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_fault_gives_the_right_error_and_recovers(pair, fault):
    if fault not in pair.supported_faults:
        pytest.skip(f"{pair.brand} has no {fault}")
    await pair.adapter.read_state()
    setattr(pair.faults, fault, True)
    with pytest.raises(FAULTS[fault]):
        await pair.adapter.read_state()
    pair.faults.clear()
    s = await pair.adapter.read_state()
    assert 0 <= s.battery_soc_pct <= 100


async def test_ignored_command_is_reported_not_honoured(pair):
    if "ignore_commands" not in pair.supported_faults:
        pytest.skip(f"{pair.brand} cannot ignore commands")
    need(pair, BatteryMode.FORCE_CHARGE)
    pair.faults.ignore_commands = True
    result = await pair.adapter.apply(SetBatteryMode(BatteryMode.FORCE_CHARGE, 2000))
    assert not result.honoured and result.detail
    pair.faults.clear()
    assert (await pair.adapter.apply(SetBatteryMode(BatteryMode.FORCE_CHARGE, 2000))).honoured


async def test_second_client_is_refused_when_device_allows_one(pair):
    if "single_client" not in pair.supported_faults:
        pytest.skip(f"{pair.brand} allows many clients")
    pair.faults.single_client = True
    await pair.adapter.read_state()  # holds the one connection
    other = (await make_pair_like(pair))
    with pytest.raises(DeviceUnavailable):
        await other.read_state()
    await other.close()


async def make_pair_like(pair):
    """A second adapter on the same simulator (same class, same address)."""
    a = pair.adapter
    return type(a)(a.host, a.port, pair.clock, timeout_s=0.5)
