"""GivEnergy registers: parsing, sign conventions, mode mapping and the writes built for each
command (no socket), plus a schedule followed by the simulated inverter over its framing."""

from datetime import UTC, datetime, time

import pytest
from givenergy_modbus.model import TimeSlot
from givenergy_modbus.pdu.write_registers import WriteHoldingRegisterRequest

from core.clock import ManualClock
from devices.base import BatteryMode, ModeWindow, SetBatteryMode, SetReserve, SetSchedule
from devices.errors import BadPayload, NotSupported
from devices.givenergy import registers as R
from tests.devices.harness_givenergy import make_pair


def banks(**over):
    hr = {a: 0 for a in range(120)}
    hr.update({R.HR_DEVICE_TYPE_CODE: 0x2003, R.HR_ARM_FIRMWARE: 920,
               R.HR_BATTERY_CAPACITY_AH: 186, R.HR_BATTERY_POWER_MODE: 1,
               R.HR_BATTERY_SOC_RESERVE: 4, R.HR_CHARGE_TARGET_SOC: 100})  # fmt: skip
    ir = {a: 0 for a in range(60)}
    ir.update({R.IR_BATTERY_SOC: 55, R.IR_P_PV1: 1200, R.IR_P_PV2: 300, R.IR_P_LOAD_DEMAND: 800})
    for k, v in over.items():
        bank, addr = k.split("_")
        (hr if bank == "hr" else ir)[int(addr)] = v
    return hr, ir


def test_parse_flips_the_grid_sign_and_reads_signed_battery_power():
    hr, ir = banks(ir_30=0xFC18, ir_52=0xFA24)  # p_grid_out -1000 (importing), p_battery -1500
    r = R.parse(hr, ir)
    assert r.p_grid_out_w == -1000 and r.p_battery_w == -1500
    assert r.p_pv_w == 1500 and r.battery_soc_pct == 55
    assert r.capacity_kwh == pytest.approx(186 * 51.2 / 1000)


def test_energy_totals_are_32_bit_tenths_high_word_first():
    hr, ir = banks(ir_32=1, ir_33=0x0010, ir_21=0, ir_22=1234)
    r = R.parse(hr, ir)
    assert r.e_grid_in_kwh == pytest.approx((65536 + 16) / 10)
    assert r.e_grid_out_kwh == pytest.approx(123.4)


@pytest.mark.parametrize(("over", "field"), [
    ({"ir_59": 101}, "SoC"), ({"hr_55": 0}, "capacity"), ({"hr_27": 7}, "power mode"),
    ({"hr_94": 2575}, "time slot"),
])  # fmt: skip
def test_impossible_values_are_bad_payload(over, field):
    with pytest.raises(BadPayload, match=field):
        R.parse(*banks(**over))


def test_missing_register_is_bad_payload():
    hr, ir = banks()
    del ir[R.IR_BATTERY_SOC]
    with pytest.raises(BadPayload, match="59"):
        R.parse(hr, ir)


@pytest.mark.parametrize(("over", "at", "mode"), [
    ({}, time(12), BatteryMode.SELF_USE),
    ({"hr_96": 1, "hr_94": 2330, "hr_95": 530}, time(1), BatteryMode.FORCE_CHARGE),  # over midnight
    ({"hr_96": 1, "hr_94": 2330, "hr_95": 530}, time(12), BatteryMode.SELF_USE),
    ({"hr_59": 1, "hr_27": 0, "hr_56": 1600, "hr_57": 1900}, time(17), BatteryMode.FORCE_DISCHARGE),
    ({"hr_59": 1, "hr_27": 1, "hr_56": 0, "hr_57": 0}, time(17), BatteryMode.HOLD),
    ({"hr_96": 1, "hr_94": 0, "hr_95": 2359, "hr_20": 1, "hr_116": 50}, time(3), BatteryMode.SELF_USE),
])  # fmt: skip
def test_mode_from_slots_and_enables(over, at, mode):
    assert R.parse(*banks(ir_59=60, **over)).mode_at(at) == mode


def regs(writes):
    return {w.register: w.value for w in writes}


def test_force_charge_is_a_whole_day_slot_target_100_and_a_c_rate_cap():
    w = regs(R.writes_for(SetBatteryMode(BatteryMode.FORCE_CHARGE, 2500), 9.5))
    assert (w[94], w[95], w[96]) == (0, 2359, 1)
    assert w[R.HR_ENABLE_CHARGE_TARGET] == 0 and w[R.HR_CHARGE_TARGET_SOC] == 100
    assert w[R.HR_BATTERY_CHARGE_LIMIT] == 26  # 2500 W of a 9.5 kWh pack is 0.26C
    assert w[R.HR_ENABLE_DISCHARGE] == 0


def test_force_discharge_is_timed_export_at_max_power():
    w = regs(R.writes_for(SetBatteryMode(BatteryMode.FORCE_DISCHARGE, 3000), 9.5))
    assert (w[56], w[57], w[59], w[27]) == (0, 2359, 1, 0)
    assert w[R.HR_BATTERY_DISCHARGE_LIMIT] == 32 and w[R.HR_ENABLE_CHARGE] == 0


def test_c_rate_is_capped_at_half_c():
    w = regs(R.writes_for(SetBatteryMode(BatteryMode.FORCE_CHARGE, 20000), 9.5))
    assert w[R.HR_BATTERY_CHARGE_LIMIT] == 50


def test_reserve_below_the_inverter_floor_becomes_four():
    assert regs(R.writes_for(SetReserve(2), 9.5)) == {R.HR_BATTERY_SOC_RESERVE: 4}
    assert regs(R.writes_for(SetReserve(35), 9.5)) == {R.HR_BATTERY_SOC_RESERVE: 35}


def test_schedule_windows_become_local_slots():
    june = datetime(2026, 6, 15, tzinfo=UTC)
    charge = ModeWindow(june.replace(hour=22, minute=30), june.replace(day=16, hour=4, minute=30),
                        BatteryMode.FORCE_CHARGE, 3000)  # fmt: skip
    export = ModeWindow(june.replace(hour=15), june.replace(hour=18),
                        BatteryMode.FORCE_DISCHARGE, 3000)  # fmt: skip
    w = regs(R.writes_for(SetSchedule((charge, export)), 9.5))
    assert (w[94], w[95]) == (2330, 530)  # BST
    assert (w[56], w[57]) == (1600, 1900)
    assert (w[31], w[32], w[44], w[45]) == (0, 0, 0, 0)  # the second slots cleared
    assert w[96] == 1 and w[59] == 1 and w[27] == 0


def test_schedule_beyond_the_slots_is_not_supported():
    t = datetime(2026, 1, 15, tzinfo=UTC)
    wins = tuple(ModeWindow(t.replace(hour=h), t.replace(hour=h + 1), BatteryMode.FORCE_CHARGE, 1000)
                 for h in (1, 3, 5))  # fmt: skip
    with pytest.raises(NotSupported):
        R.writes_for(SetSchedule(wins), 9.5)
    hold = ModeWindow(t.replace(hour=1), t.replace(hour=2), BatteryMode.HOLD)
    with pytest.raises(NotSupported):
        R.writes_for(SetSchedule((hold,)), 9.5)


def test_a_register_outside_the_allowlist_is_never_built():
    with pytest.raises(NotSupported, match="HR\\(1\\)"):
        R.check_allowed([WriteHoldingRegisterRequest(1, 5)])


def test_slot_round_trip():
    slot = TimeSlot(time(23, 30), time(5, 30))
    assert R.decode_slot(*R.encode_slot(slot)) == slot
    assert R.decode_slot(0, 0) is None


async def test_schedule_is_followed_by_the_simulated_inverter():
    t0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    pair = await make_pair(ManualClock(t0))
    try:
        win = ModeWindow(t0.replace(hour=13), t0.replace(hour=14), BatteryMode.FORCE_CHARGE, 2000)
        assert (await pair.adapter.apply(SetSchedule((win,)))).honoured
        assert (await pair.adapter.read_state()).mode == BatteryMode.SELF_USE
        pair.clock.advance(90 * 60)  # 13:30
        s = await pair.adapter.read_state()
        assert s.mode == BatteryMode.FORCE_CHARGE
        assert s.battery_w == pytest.approx(-1995, abs=60)  # 0.21C of 9.5 kWh
        pair.clock.advance(60 * 60)  # 14:30: the slot is over
        assert (await pair.adapter.read_state()).mode == BatteryMode.SELF_USE
    finally:
        await pair.close()


async def test_frames_are_spaced_for_a_real_dongle():
    from devices.givenergy.adapter import GivEnergyAdapter
    from simulator.givenergy import GivEnergySimulator
    from simulator.world import SiteWorld

    clock = ManualClock(datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    sim = GivEnergySimulator(SiteWorld(clock))
    port = await sim.start()
    adapter = GivEnergyAdapter("127.0.0.1", port, clock, timeout_s=2, frame_gap_s=0.05)
    try:
        await adapter.read_state()  # three reads
        gaps = [b - a for a, b in zip(sim.arrivals, sim.arrivals[1:], strict=False)]
        assert len(gaps) == 2 and min(gaps) >= 0.045
    finally:
        await adapter.close()
        await sim.stop()


@pytest.mark.parametrize("model", ["hybrid", "ac", "aio", "ems", "gateway", "three-phase"])
async def test_the_simulator_serves_each_model_and_the_adapter_behaves_per_model(model):
    from devices.givenergy.adapter import GivEnergyAdapter
    from simulator.givenergy import GivEnergySimulator
    from simulator.world import SiteWorld

    clock = ManualClock(datetime(2026, 6, 15, 12, 0, tzinfo=UTC))
    world = SiteWorld(clock)
    sim = GivEnergySimulator(world, model=model)
    port = await sim.start()
    adapter = GivEnergyAdapter("127.0.0.1", port, clock, timeout_s=2, frame_gap_s=0)
    try:
        if model in ("ems", "gateway", "three-phase"):
            with pytest.raises(NotSupported, match="is not supported"):
                await adapter.read_state()
            return
        state = await adapter.read_state()
        truth = world.snapshot()
        # Ah are whole numbers, so the pack is within one Ah of the world's.
        assert abs(state.battery_capacity_kwh - world.battery.capacity_kwh) < 0.31
        assert state.pv_w + state.grid_w + state.battery_w == pytest.approx(state.load_w, abs=2)
        if model != "ac":
            assert state.load_w == pytest.approx(truth.load_w, abs=1)
        # HR(111) does not cap an AC-coupled unit's rate: the result says the power is not set.
        result = await adapter.apply(SetBatteryMode(BatteryMode.FORCE_CHARGE, 1000))
        assert result.honoured
        assert ("power not settable" in result.detail) == (model == "ac")
    finally:
        await adapter.close()
        await sim.stop()
