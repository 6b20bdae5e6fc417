"""What real OCPP 1.6 chargers send, as raw OCPP-J frames written from the specification (not
the ocpp library flexd uses): quirky frames read leniently, replies still valid against the
OCPP 1.6 schemas, the sub-protocol handshake of OCPP-J section 3.1.2, and fallbacks for a
charger that refuses TxDefaultProfile or the composite-schedule read-back."""

import asyncio
import contextlib
import json
from datetime import timedelta

import pytest
import websockets
from ocpp.messages import CallResult, validate_payload

from devices.base import ChargePeriod, ChargeProfile, StopCharging
from devices.ocpp.adapter import OcppChargerAdapter
from tests.chargers.test_ocpp_callerror import T0, csms  # noqa: F401  (fixture)


async def _frames(url, frames, subprotocols=("ocpp1.6",)):
    """Send CALL frames in order; return each CALLRESULT/CALLERROR received."""
    replies = []
    async with websockets.connect(url, subprotocols=list(subprotocols)) as ws:
        for i, (action, payload) in enumerate(frames):
            await ws.send(json.dumps([2, f"u{i}", action, payload]))
            replies.append((action, json.loads(await asyncio.wait_for(ws.recv(), 3))))
    return replies


QUIRKY = [
    ("BootNotification", {"chargePointVendor": "RawCo", "chargePointModel": 7,
                          "evseId": 1, "vendorKey": {"fw": "1.2"}}),
    ("StatusNotification", {"connectorId": "1", "errorCode": "noerror", "status": "SuspendedEv"}),
    ("StartTransaction", {"connectorId": 1, "idTag": 4711, "meterStart": "2500.0",
                          "timestamp": "2026-01-15T18:00:00Z"}),
    ("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": "2026-01-15T18:00:00Z",
        "sampledValue": [{"value": 11000, "measurand": "power.active.import", "unit": "w"},
                         {"value": "3000", "measurand": "Energy.Active.Import.Register",
                          "unit": "Wh", "evseId": 1},
                         {"value": 55, "measurand": "soc"}]}]}),
    ("Heartbeat", {"vendor": "x"}),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "charging"}),
]  # fmt: skip


async def test_quirky_frames_are_accepted_normalised_and_logged(csms):  # noqa: F811
    replies = await _frames(f"ws://127.0.0.1:{csms.port}/Q1", QUIRKY)
    assert [r[0] for _a, r in replies] == [3] * len(QUIRKY), replies  # no CALLERROR
    assert replies[0][1][2]["status"] == "Accepted"  # the charger is accepted
    rec = csms.records["Q1"]
    assert rec.status == "Charging" and "SuspendedEV" in rec.events
    assert rec.power_w == 11000 and rec.register_wh == 3000 and rec.soc_pct == 55
    assert rec.transaction_id is not None and rec.session_start_wh == 2500
    assert rec.boot["model"] == "7"
    joined = " | ".join(sorted(rec.quirks))
    for word in ("evse_id", "'SuspendedEv'", "'soc'", "'w'", "idTag"):
        assert word in joined, joined


async def test_every_reply_to_quirky_frames_is_valid_ocpp_1_6(csms):  # noqa: F811
    replies = await _frames(f"ws://127.0.0.1:{csms.port}/Q2", QUIRKY)
    for action, reply in replies:
        result = CallResult(unique_id=reply[1], payload=reply[2], action=action)
        await validate_payload(result, "1.6")  # raises on an invalid reply


async def test_upper_case_subprotocol_is_accepted_and_echoed(csms):  # noqa: F811
    async with websockets.connect(f"ws://127.0.0.1:{csms.port}/U1",
                                  subprotocols=["OCPP1.6"]) as ws:  # fmt: skip
        assert ws.subprotocol == "OCPP1.6"
        await ws.send(json.dumps([2, "b", "BootNotification",
                                  {"chargePointVendor": "V", "chargePointModel": "M"}]))  # fmt: skip
        assert json.loads(await asyncio.wait_for(ws.recv(), 3))[2]["status"] == "Accepted"


async def test_no_subprotocol_completes_the_handshake_then_closes(csms):  # noqa: F811
    # OCPP-J 1.6 section 3.1.2: complete the handshake without Sec-WebSocket-Protocol, then
    # close; websockets' default was an HTTP 400.
    async with websockets.connect(f"ws://127.0.0.1:{csms.port}/N1") as ws:
        assert ws.subprotocol is None
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 3)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1002
    assert "N1" not in csms.records


async def _refusing_charge_point(url, seen, ready, clear_status="Accepted"):
    """A charger that takes TxProfile/ChargePointMaxProfile but refuses TxDefaultProfile, and
    rejects the GetCompositeSchedule read-back (both allowed by OCPP 1.6)."""
    async with websockets.connect(url, subprotocols=["ocpp1.6"]) as ws:
        for i, (action, payload) in enumerate([
            ("BootNotification", {"chargePointVendor": "R", "chargePointModel": "TxOnly"}),
            ("StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                    "status": "Preparing"}),
            ("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": "2026-01-15T18:00:00Z",
             "sampledValue": [{"value": "10", "measurand": "Energy.Active.Import.Register"}]}]}),
        ]):  # fmt: skip
            await ws.send(json.dumps([2, f"c{i}", action, payload]))
            await ws.recv()
        ready.set()
        while True:
            _, uid, action, payload = json.loads(await ws.recv())
            if action == "SetChargingProfile":
                purpose = payload["csChargingProfiles"]["chargingProfilePurpose"]
                seen.append((purpose, payload["connectorId"]))
                ok = purpose != "TxDefaultProfile"
                await ws.send(json.dumps([3, uid, {"status": "Accepted" if ok else "Rejected"}]))
            elif action == "GetCompositeSchedule":
                await ws.send(json.dumps([3, uid, {"status": "Rejected"}]))
            else:
                seen.append((action, payload))
                status = clear_status if action == "ClearChargingProfile" else "Accepted"
                await ws.send(json.dumps([3, uid, {"status": status}]))


async def test_refused_tx_default_profile_falls_back_to_a_charge_point_max_profile(csms):  # noqa: F811
    seen, ready = [], asyncio.Event()
    task = asyncio.create_task(
        _refusing_charge_point(f"ws://127.0.0.1:{csms.port}/TX1", seen, ready))
    try:
        await asyncio.wait_for(ready.wait(), 5)
        adapter = OcppChargerAdapter(csms, "TX1", csms.clock, timeout_s=3)
        # Plugged in, no transaction yet: a pause must hold even though TxDefault is refused.
        first = await adapter.apply(StopCharging())
        assert first.honoured and "ChargePointMaxProfile" in first.detail
        assert seen == [("TxDefaultProfile", 1), ("ChargePointMaxProfile", 0)]
        # The refused purpose is not tried again every cycle.
        again = await adapter.apply(ChargeProfile(
            (ChargePeriod(T0, T0 + timedelta(hours=1), 3000.0),)))  # fmt: skip
        assert again.honoured
        assert seen[2:] == [("ChargePointMaxProfile", 0)]
        # Once a transaction runs, its TxProfile lands and the cap is cleared.
        csms.records["TX1"].transaction_id = 7
        third = await adapter.apply(StopCharging())
        assert third.honoured and "no read-back" in third.detail
        assert seen[3] == ("TxProfile", 1)
        assert seen[4][0] == "ClearChargingProfile" and seen[4][1]["id"] is not None
        assert csms.records["TX1"].max_profile_id is None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await task


async def test_a_cap_the_charger_did_not_clear_is_cleared_again(csms):  # noqa: F811
    seen, ready = [], asyncio.Event()
    task = asyncio.create_task(_refusing_charge_point(
        f"ws://127.0.0.1:{csms.port}/TX2", seen, ready, clear_status="Unknown"))  # fmt: skip
    try:
        await asyncio.wait_for(ready.wait(), 5)
        adapter = OcppChargerAdapter(csms, "TX2", csms.clock, timeout_s=3)
        assert (await adapter.apply(StopCharging())).honoured  # a 0 W ChargePointMaxProfile
        cap = csms.records["TX2"].max_profile_id
        csms.records["TX2"].transaction_id = 9
        assert (await adapter.apply(StopCharging())).honoured
        # The charger did not confirm the clear: flexd keeps the cap's id and clears it again.
        assert csms.records["TX2"].max_profile_id == cap
        await adapter.apply(ChargeProfile((ChargePeriod(T0, T0 + timedelta(hours=1), 3000.0),)))
        clears = [p for a, p in seen if a == "ClearChargingProfile"]
        assert len(clears) == 2 and all(c["id"] == cap for c in clears)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await task


def test_impossible_numbers_are_ignored_not_raised():
    from devices.ocpp import lenient as L

    quirks = []
    assert L.as_int("inf", "meterStart", quirks.append, default=0) == 0
    assert L.as_int("1e400", "meterStart", quirks.append, default=0) == 0
    assert L.as_float("NaN", "value", quirks.append) is None
    assert L.as_float(float("inf"), "value", quirks.append) is None
    assert L.sampled_value({"value": "nan", "measurand": "SoC"}, quirks.append) is None
    assert len(quirks) == 5
