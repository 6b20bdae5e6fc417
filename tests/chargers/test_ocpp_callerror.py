"""An independent charge point that answers CALLERROR, written as raw OCPP-J frames from the
OCPP 1.6J specification (section 4: [2, id, action, payload] CALL, [3, id, payload] CALLRESULT,
[4, id, code, description, details] CALLERROR), not with the ocpp library flexd uses."""

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
import websockets

from core.clock import ManualClock
from devices.base import ChargePeriod, ChargeProfile
from devices.errors import NotSupported
from devices.ocpp.adapter import OcppChargerAdapter
from devices.ocpp.csms import CentralSystem

T0 = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)


def energy(wh):
    return [{"timestamp": T0.isoformat().replace("+00:00", "Z"),
             "sampledValue": [{"value": str(wh), "measurand": "Energy.Active.Import.Register",
                               "unit": "Wh"}]}]  # fmt: skip


async def raw_charge_point(url, answers, ready, meter=None, status="Preparing"):
    """Boot, report a plugged-in connector and a meter value, then answer each CALL from
    ``answers`` (action -> frame maker) until cancelled."""
    async with websockets.connect(url, subprotocols=["ocpp1.6"]) as ws:
        async def call(action, payload):
            await ws.send(json.dumps([2, action.lower(), action, payload]))

        await call("BootNotification", {"chargePointVendor": "RawCo", "chargePointModel": "R1"})
        await call("StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                          "status": status})  # fmt: skip
        await call("MeterValues", {"connectorId": 1, "meterValue": meter or energy(1000)})
        while True:
            msg = json.loads(await ws.recv())
            if msg[0] == 2:  # a CALL from the central system
                _, uid, action, _payload = msg
                await ws.send(json.dumps(answers[action](uid)))
            elif msg[0] == 3 and msg[1] == "metervalues":
                ready.set()


def accepted(uid):
    return [3, uid, {"status": "Accepted"}]


def not_supported(uid):
    return [4, uid, "NotSupported", "smart charging is not implemented", {}]


@pytest.fixture
async def csms():
    c = CentralSystem(ManualClock(T0))
    await c.start()
    yield c
    await c.stop()


async def _run(csms, answers):
    ready = asyncio.Event()
    task = asyncio.create_task(raw_charge_point(f"ws://127.0.0.1:{csms.port}/RAW1", answers, ready))
    await asyncio.wait_for(ready.wait(), 5)
    return task


def _profile():
    return ChargeProfile((ChargePeriod(T0, T0 + timedelta(hours=1), 7000.0),))


async def test_callerror_to_set_charging_profile_is_not_supported_not_a_crash(csms):
    task = await _run(csms, {"SetChargingProfile": not_supported})
    try:
        adapter = OcppChargerAdapter(csms, "RAW1", csms.clock, timeout_s=3)
        with pytest.raises(NotSupported, match="SetChargingProfile"):
            await adapter.apply(_profile())
        assert (await adapter.read_state()).plugged_in  # the link is still good
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await task


async def test_no_composite_schedule_means_no_read_back_not_a_failure(csms):
    task = await _run(csms, {"SetChargingProfile": accepted,
                             "GetCompositeSchedule": not_supported})  # fmt: skip
    try:
        adapter = OcppChargerAdapter(csms, "RAW1", csms.clock, timeout_s=3)
        result = await adapter.apply(_profile())
        assert result.honoured and "no read-back" in result.detail
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await task


async def _handshake(port, path, user, password):
    """A raw connection with basic auth; returns the close code, or None if it stayed open."""
    import base64

    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/{path}", subprotocols=["ocpp1.6"],
                                      additional_headers={"Authorization": f"Basic {auth}"}) as ws:  # fmt: skip
            await ws.send(json.dumps([2, "b", "BootNotification",
                                      {"chargePointVendor": "RawCo", "chargePointModel": "R1"}]))  # fmt: skip
            reply = json.loads(await asyncio.wait_for(ws.recv(), 3))
            return None if reply[0] == 3 else reply
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else -1
    except websockets.InvalidStatus as exc:
        return exc.response.status_code


async def test_basic_auth_is_bound_to_the_charger_id():
    # OCPP 1.6 security profile 1: the username is the charge point's identity. Charger A's
    # own password must not open charger B's connection.
    c = CentralSystem(ManualClock(T0), passwords={"CP-A": "secret-a", "CP-B": "secret-b"})
    port = await c.start()
    try:
        assert await _handshake(port, "CP-B", "CP-A", "secret-a") == 1008
        assert "CP-B" not in c.records or not c.records["CP-B"].connected
        assert await _handshake(port, "CP-A", "CP-A", "secret-a") is None
        assert await _handshake(port, "CP-A", "CP-A", "wrong") == 401
    finally:
        await c.stop()


async def test_a_url_encoded_charger_id_is_decoded(csms):
    ready = asyncio.Event()
    task = asyncio.create_task(raw_charge_point(f"ws://127.0.0.1:{csms.port}/CP%201",
                                                {}, ready))  # fmt: skip
    try:
        await asyncio.wait_for(ready.wait(), 5)
        assert "CP 1" in csms.records and "CP%201" not in csms.records
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await task


def _at(minute, *values):
    t = (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
    return {"timestamp": t, "sampledValue": list(values)}


def _sv(value, measurand, unit, phase=None):
    out = {"value": str(value), "measurand": measurand, "unit": unit}
    return out | ({"phase": phase} if phase else {})


async def test_three_phase_power_without_a_total_is_summed_and_the_newest_sample_wins(csms):
    # An 11 kW three-phase session reported per line (OCPP 1.6 SampledValue.phase L1/L2/L3, no
    # total), with an older buffered sample flushed after the newest one.
    meter = [
        _at(5, _sv(3667, "Power.Active.Import", "W", "L1"), _sv(3667, "Power.Active.Import", "W", "L2"),
            _sv(3666, "Power.Active.Import", "W", "L3"), _sv(12.5, "Energy.Active.Import.Register", "kWh")),
        _at(1, _sv(0, "Power.Active.Import", "W", "L1"), _sv(11.8, "Energy.Active.Import.Register", "kWh")),
    ]  # fmt: skip
    ready = asyncio.Event()
    task = asyncio.create_task(raw_charge_point(f"ws://127.0.0.1:{csms.port}/RAW3", {}, ready, meter,
                                                "Charging"))
    try:
        await asyncio.wait_for(ready.wait(), 5)
        state = await OcppChargerAdapter(csms, "RAW3", csms.clock, timeout_s=3).read_state()
        assert state.charging_w == 11000
        assert state.energy_register_kwh == pytest.approx(12.5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await task


def test_a_total_beats_the_lines_and_neutral_is_never_added():
    from devices.ocpp.csms import sampled_values

    mv = [{"timestamp": "2026-01-15T18:00:00Z", "sampled_value": [
        {"value": "7000", "measurand": "Power.Active.Import", "unit": "W"},
        {"value": "2400", "measurand": "Power.Active.Import", "unit": "W", "phase": "L1"},
        {"value": "50", "measurand": "Current.Import", "unit": "A", "phase": "N"},
    ]}]  # fmt: skip
    got = sampled_values(mv)
    assert got["Power.Active.Import"] == (7000.0, "W") and "Current.Import" not in got
