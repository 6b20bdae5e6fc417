"""The OCPP central system, adapter and simulated charge point over a real websocket."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.clock import ManualClock
from devices.base import (
    ChargeNow,
    ChargePeriod,
    ChargeProfile,
    ChargerStatus,
    SocSource,
    StopCharging,
)
from devices.ocpp.adapter import OcppChargerAdapter
from devices.ocpp.csms import CentralSystem
from simulator.ev import EV
from simulator.ocpp_charger import OcppChargerSimulator

T0 = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)


async def settle(clock, seconds, step=15.0):
    for _ in range(int(seconds / step)):
        clock.advance(step)
        await asyncio.sleep(0.003)
    await asyncio.sleep(0.02)


class Rig:
    def __init__(self, clock, csms, sim, adapter, ev, task):
        self.clock, self.csms, self.sim, self.adapter, self.ev, self.task = clock, csms, sim, adapter, ev, task


@pytest.fixture
async def rig():
    clock = ManualClock(T0)
    csms = CentralSystem(clock)
    port = await csms.start()
    ev = EV(clock, soc_kwh=20.0, plugged_in=True)
    sim = OcppChargerSimulator(f"ws://127.0.0.1:{port}", "CP1", ev, clock)
    task = asyncio.get_running_loop().create_task(sim.run())
    await asyncio.wait_for(sim.connected.wait(), 5)
    await settle(clock, 30)
    # The plugged-in car's session starts on the simulator's tick; on a busy machine that can
    # take longer than the settle above (real time), and every test here starts inside it.
    for _ in range(200):
        if csms.records["CP1"].transaction_id is not None and csms.records["CP1"].meter_at:
            break
        await settle(clock, 15)
    adapter = OcppChargerAdapter(csms, "CP1", clock, timeout_s=5)
    yield Rig(clock, csms, sim, adapter, ev, task)
    sim.stop()
    await asyncio.wait_for(task, 5)
    await csms.stop()


async def test_plug_in_is_seen_with_a_transaction(rig):
    s = await rig.adapter.read_state()
    assert s.plugged_in and rig.csms.records["CP1"].transaction_id is not None
    assert "Preparing" in rig.csms.records["CP1"].events
    assert s.soc_source == SocSource.CHARGER and s.soc_pct == pytest.approx(33.3, abs=0.2)


async def test_two_period_profile_charges_only_inside_its_periods(rig):
    now = rig.clock.now()
    p1 = ChargePeriod(now + timedelta(minutes=15), now + timedelta(minutes=45), 3000)
    p2 = ChargePeriod(now + timedelta(minutes=75), now + timedelta(minutes=105), 7000)
    result = await rig.adapter.apply(ChargeProfile((p1, p2)))
    assert result.honoured, result.detail
    start_kwh = rig.ev.delivered_kwh
    await settle(rig.clock, 15 * 60)  # before the first period
    assert rig.ev.delivered_kwh == pytest.approx(start_kwh, abs=1e-6)
    await settle(rig.clock, 30 * 60)  # the first period
    assert rig.ev.delivered_kwh - start_kwh == pytest.approx(1.5, abs=0.05)
    state = await rig.adapter.read_state()
    await settle(rig.clock, 15 * 60)  # halfway through the gap
    assert (await rig.adapter.read_state()).status == ChargerStatus.SUSPENDED_EVSE
    await settle(rig.clock, 15 * 60)
    assert rig.ev.delivered_kwh - start_kwh == pytest.approx(1.5, abs=0.05)
    await settle(rig.clock, 30 * 60)  # the second period
    assert rig.ev.delivered_kwh - start_kwh == pytest.approx(5.0, abs=0.1)
    after = await rig.adapter.read_state()
    assert after.soc_pct > state.soc_pct
    assert after.energy_register_kwh - state.energy_register_kwh == pytest.approx(3.5, abs=0.15)


async def test_charge_now_starts_at_once_and_stop_stops(rig):
    assert (await rig.adapter.apply(ChargeNow())).honoured
    await settle(rig.clock, 60)
    s = await rig.adapter.read_state()
    assert s.status == ChargerStatus.CHARGING and s.charging_w == pytest.approx(7400, abs=1)
    assert (await rig.adapter.apply(StopCharging())).honoured
    before = rig.ev.delivered_kwh
    await settle(rig.clock, 600)
    assert rig.ev.delivered_kwh == pytest.approx(before, abs=0.01)
    s = await rig.adapter.read_state()
    assert s.plugged_in and s.status == ChargerStatus.SUSPENDED_EVSE


async def test_reconnect_keeps_the_session_and_resends_the_profile(rig):
    now = rig.clock.now()
    prof = ChargeProfile((ChargePeriod(now, now + timedelta(hours=2), 3000),))
    assert (await rig.adapter.apply(prof)).honoured
    tx = rig.csms.records["CP1"].transaction_id
    rig.sim.profiles.clear()  # forget it, to see the central system send it again
    rig.sim.connected.clear()
    rig.sim.drop_connection()
    await asyncio.wait_for(rig.sim.connected.wait(), 5)
    for _ in range(100):  # the central system re-sends shortly after the boot exchange
        if "TxProfile" in rig.sim.profiles:
            break
        await asyncio.sleep(0.02)
    await settle(rig.clock, 60)
    assert rig.sim.boots == 2
    assert rig.csms.records["CP1"].transaction_id == tx
    assert "TxProfile" in rig.sim.profiles
    assert rig.sim.limit_w() == pytest.approx(3000)


async def test_rejected_profile_is_not_honoured(rig):
    rig.sim.reject_profiles = True
    now = rig.clock.now()
    r = await rig.adapter.apply(ChargeProfile((ChargePeriod(now, now + timedelta(hours=1), 3000),)))
    assert not r.honoured and "rejected" in r.detail


async def test_car_that_stops_accepting_shows_suspended_ev(rig):
    assert (await rig.adapter.apply(ChargeNow())).honoured
    rig.ev.accepts_charge = False
    await settle(rig.clock, 60)
    assert (await rig.adapter.read_state()).status == ChargerStatus.SUSPENDED_EV


async def test_bad_basic_auth_is_refused():
    clock = ManualClock(T0)
    csms = CentralSystem(clock, passwords={"CP9": "right"})
    port = await csms.start()
    ev = EV(clock, plugged_in=True)
    bad = OcppChargerSimulator(f"ws://127.0.0.1:{port}", "CP9", ev, clock, password="wrong")
    task = asyncio.get_running_loop().create_task(bad.run())
    await asyncio.sleep(0.3)
    assert not bad.connected.is_set() and "CP9" not in csms.records
    bad.stop()
    await asyncio.wait_for(task, 5)
    good = OcppChargerSimulator(f"ws://127.0.0.1:{port}", "CP9", ev, clock, password="right")
    task = asyncio.get_running_loop().create_task(good.run())
    await asyncio.wait_for(good.connected.wait(), 5)
    assert csms.records["CP9"].connected
    good.stop()
    await asyncio.wait_for(task, 5)
    await csms.stop()


async def test_missed_heartbeats_make_the_charger_unavailable_until_it_speaks_again(rig):
    from devices.errors import DeviceUnavailable

    await rig.adapter.read_state()
    rig.sim.silent = True  # the socket stays open; no heartbeats, no meter values
    await settle(rig.clock, 20 * 60, step=60.0)
    with pytest.raises(DeviceUnavailable, match="missed heartbeats"):
        await rig.adapter.read_state()
    rig.sim.silent = False
    await settle(rig.clock, 6 * 60, step=60.0)  # the next heartbeat / meter values arrive
    assert (await rig.adapter.read_state()).plugged_in
