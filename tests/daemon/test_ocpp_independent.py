"""The daemon driving an independent charge point: raw OCPP-J 1.6 frames written from the
specification (not the ocpp library flexd uses, not flexd's simulator), sending the quirky frames
real chargers send, and rebooting mid-session with a new transaction.

Before the fix, the site loop's command cache compared the command only: after the reboot the
new transaction got no profile until the 30-minute resend."""

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta

import websockets

from core.clock import ScaledClock
from flexd.config import parse_config
from flexd.daemon import Daemon
from flexd.simulation import simulated_backends
from flexd.storage import Storage
from tests.conftest import free_port

SPEED = 600.0
START = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)


def iso(t):
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class RawChargePoint:
    """Plugged in with a car at 40 %; answers SetChargingProfile like a real charger (a
    TxProfile for another transaction is Rejected) and GetCompositeSchedule with Rejected."""

    def __init__(self, url, clock):
        self.url, self.clock = url, clock
        self.profiles = []  # (sim time, purpose, transaction id)
        self.tx = None
        self.started_at = {}  # transaction id -> sim time
        self.replies = []  # every CALLRESULT the central system sent us
        self.n = 0

    async def _call(self, ws, action, payload):
        self.n += 1
        uid = f"m{self.n}"
        await ws.send(json.dumps([2, uid, action, payload]))
        while True:
            msg = json.loads(await ws.recv())
            if msg[0] == 2:
                await self._answer(ws, msg)
            elif msg[1] == uid:
                self.replies.append((action, msg))
                return msg

    async def _answer(self, ws, msg):
        _, uid, action, payload = msg
        if action == "SetChargingProfile":
            prof = payload["csChargingProfiles"]
            tx = prof.get("transactionId")
            ok = prof["chargingProfilePurpose"] != "TxProfile" or tx == self.tx
            if ok:
                self.profiles.append((self.clock.now(), prof["chargingProfilePurpose"], tx))
            # lower case and a vendor key: what some firmwares answer
            await ws.send(json.dumps([3, uid, {"status": "accepted" if ok else "rejected",
                                               "vendorInfo": "x"}]))  # fmt: skip
        elif action == "GetCompositeSchedule":
            await ws.send(json.dumps([3, uid, {"status": "Rejected"}]))
        else:
            await ws.send(json.dumps([3, uid, {"status": "Accepted"}]))

    async def _boot(self, ws):
        # An extra field (evseId) and a vendor key: strict schemas refuse this BootNotification.
        await self._call(ws, "BootNotification", {"chargePointVendor": "RawCo",
                                                  "chargePointModel": "R1", "evseId": 1,
                                                  "vendorX": {"a": 1}})  # fmt: skip

    async def _start(self, ws, register_wh):
        reply = await self._call(ws, "StartTransaction", {
            "connectorId": "1", "idTag": 12345, "meterStart": str(register_wh),
            "timestamp": iso(self.clock.now())})  # fmt: skip
        self.tx = reply[2]["transactionId"]
        self.started_at[self.tx] = self.clock.now()
        await self._call(ws, "StatusNotification", {"connectorId": 1, "errorCode": "noError",
                                                    "status": "charging"})  # fmt: skip

    async def _meter(self, ws, register_wh):
        await self._call(ws, "MeterValues", {"connectorId": 1, "transactionId": self.tx,
                                             "meterValue": [{"timestamp": iso(self.clock.now()),
            "sampledValue": [
                {"value": register_wh, "measurand": "energy.active.import.register",
                 "unit": "wh"},
                {"value": "40", "measurand": "soc", "unit": "percent"},
                {"value": "0", "measurand": "Power.Active.Import", "unit": "W", "phase": "l1"},
            ]}]})  # fmt: skip

    async def _serve(self, ws, until, register_wh):
        while self.clock.now() < until:
            await self._meter(ws, register_wh)
            with contextlib.suppress(TimeoutError):
                msg = json.loads(await asyncio.wait_for(ws.recv(), 0.1))
                if msg[0] == 2:
                    await self._answer(ws, msg)

    async def run(self, reboot_at, end_at):
        register = 1_000_000
        async with websockets.connect(self.url, subprotocols=["OCPP1.6"]) as ws:
            assert ws.subprotocol == "OCPP1.6"  # echoed as offered
            await self._boot(ws)
            await self._call(ws, "StatusNotification", {"connectorId": 1,
                                                        "errorCode": "NoError",
                                                        "status": "Preparing"})  # fmt: skip
            await self._start(ws, register)
            await self._serve(ws, reboot_at, register)
        # The reboot: a new connection, the old transaction stopped, a new one started.
        async with websockets.connect(self.url, subprotocols=["ocpp1.6"]) as ws:
            await self._boot(ws)
            await self._call(ws, "StopTransaction", {"transactionId": self.tx,
                                                     "meterStop": register,
                                                     "timestamp": iso(self.clock.now()),
                                                     "reason": "Reboot"})  # fmt: skip
            await self._start(ws, register)
            await self._serve(ws, end_at, register)


async def test_a_rebooted_charger_gets_its_new_transaction_profile_within_a_cycle(tmp_path):
    port = free_port()
    doc = {
        "daemon": {"database": str(tmp_path / "flexd.sqlite"), "log_format": "json",
                   "cycle_seconds": 120},
        "api": {"enabled": False},
        "prices": {"source": "simulator"},
        "simulation": {"start": START.isoformat(), "speed": SPEED, "hours": 3},
        "sites": [{"id": "home", "meter": "M1", "tariff": "io-go", "devices": [{
            "id": "charger", "brand": "ocpp", "charge_point_id": "RAW1", "simulate": False,
            "csms_port": port, "poll_seconds": 30,
            "ev": {"capacity_kwh": 60, "max_charge_kw": 7.4, "efficiency": 0.9},
            "preferences": {"weekday_ready_by": "07:00", "weekend_ready_by": "07:00",
                            "target_soc_pct": 80}}]}],
    }  # fmt: skip
    cfg = parse_config(doc, tmp_path, env={})
    clock = ScaledClock(START, SPEED)
    storage = await Storage.open(cfg.database)
    daemon = Daemon(cfg, clock, storage, simulated_backends(cfg, clock),
                    until=START + timedelta(hours=3))  # fmt: skip
    cp = RawChargePoint(f"ws://127.0.0.1:{port}/RAW1", clock)
    done = asyncio.Event()

    async def started(_d):
        async def drive():
            try:
                # mid half-hour: the plan's command has not changed since the last send
                await cp.run(START + timedelta(hours=1, minutes=10),
                             START + timedelta(hours=2, minutes=30))
            finally:
                done.set()

        asyncio.get_running_loop().create_task(drive())

    try:
        await asyncio.wait_for(daemon.run(on_started=started), timeout=120)
    finally:
        await storage.close()
    assert done.is_set()
    first, second = sorted(cp.started_at)
    tx_profiles = {tx: [t for t, purpose, ptx in cp.profiles if purpose == "TxProfile"
                        and ptx == tx] for tx in (first, second)}  # fmt: skip
    assert tx_profiles[first], cp.profiles
    # The new transaction's profile lands within two control cycles of its start, not at
    # the 30-minute resend.
    lag = tx_profiles[second][0] - cp.started_at[second] if tx_profiles[second] else None
    assert lag is not None and lag <= timedelta(seconds=2 * 120 + 60), (lag, cp.profiles)
    # Quirky frames were accepted: the boot with extra fields, the lower-case status and SoC.
    rec = daemon.backends.shared["csms"].records["RAW1"]
    boots = [m for a, m in cp.replies if a == "BootNotification"]
    assert len(boots) == 2 and all(m[2]["status"] == "Accepted" for m in boots)
    assert rec.soc_pct == 40 and rec.status == "Charging"
    assert any("evse_id" in q for q in rec.quirks), rec.quirks
    assert any("'soc'" in q for q in rec.quirks), rec.quirks
