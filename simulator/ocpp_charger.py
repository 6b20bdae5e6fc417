"""A simulated OCPP 1.6J charge point, written with the same ``ocpp`` library, driving an EV.

It dials the central system, boots, reports status and meter values (power, energy register,
SoC when the car reports it) on the injected clock, obeys the charging profiles it receives
(TxProfile over TxDefaultProfile, Absolute or Relative), and starts a transaction when the car
plugs in. Faults: drop the connection and reconnect, reject profiles, stop heartbeats.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.typing import Subprotocol

from core.clock import Clock, SystemClock
from devices.ocpp import profiles as P
from simulator.ev import EV


class _Client(ChargePoint):
    def __init__(self, sim: OcppChargerSimulator, connection: Any) -> None:
        super().__init__(sim.cp_id, connection, response_timeout=10)
        self.sim = sim

    @on(Action.set_charging_profile)
    async def on_set_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        return call_result.SetChargingProfile(status=self.sim.accept_profile(cs_charging_profiles))

    @on(Action.clear_charging_profile)
    async def on_clear(self, **kw: Any) -> Any:
        self.sim.profiles.clear()
        self.sim.reevaluate()
        return call_result.ClearChargingProfile(status="Accepted")

    @on(Action.remote_start_transaction)
    async def on_remote_start(self, id_tag: str, **kw: Any) -> Any:
        ok = self.sim.ev.plugged_in and self.sim.transaction_id is None
        if ok:
            asyncio.get_running_loop().create_task(self.sim.start_transaction(id_tag))
        return call_result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id: int) -> Any:
        ok = transaction_id == self.sim.transaction_id
        if ok:
            asyncio.get_running_loop().create_task(self.sim.stop_transaction("Remote"))
        return call_result.RemoteStopTransaction(status="Accepted" if ok else "Rejected")

    @on(Action.get_composite_schedule)
    async def on_composite(self, connector_id: int, duration: int, **kw: Any) -> Any:
        unit = kw.get("charging_rate_unit") or "W"
        limit_w = self.sim.limit_w()
        limit = limit_w if unit == "W" else limit_w / (P.NOMINAL_V * self.sim.phases)
        now = self.sim.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        return call_result.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=now,
            charging_schedule={"charging_rate_unit": unit, "duration": duration,
                               "start_schedule": now,
                               "charging_schedule_period": [
                                   {"start_period": 0, "limit": round(limit, 1)}]},
        )  # fmt: skip


class OcppChargerSimulator:
    def __init__(
        self, csms_url: str, cp_id: str, ev: EV, clock: Clock, *, max_power_w: float = 7400.0,
        phases: int = 1, meter_interval_s: float = 60.0, heartbeat_s: float = 300.0,
        tick_s: float = 15.0, password: str | None = None,
    ) -> None:  # fmt: skip
        self.url = csms_url.rstrip("/") + "/" + cp_id if not csms_url.endswith(cp_id) else csms_url
        self.cp_id, self.ev, self.clock = cp_id, ev, clock
        self.max_power_w, self.phases = max_power_w, phases
        self.meter_interval_s, self.heartbeat_s, self.tick_s = meter_interval_s, heartbeat_s, tick_s
        self.password = password
        self.profiles: dict[str, tuple[dict[str, Any], datetime]] = {}
        self.transaction_id: int | None = None
        self.register_base_wh = 1_000_000.0  # an old charger: the register is never zero
        self.status = "Available"
        self.reject_profiles = False
        self.auto_start = True
        self.silent = False  # missed heartbeats and meter values
        self.client: _Client | None = None
        self._ws: Any = None
        self._stop = asyncio.Event()
        self._drop = asyncio.Event()
        self.connected = asyncio.Event()
        self.boots = 0
        self._ids = itertools.count(1)

    # --- profile logic ----------------------------------------------------------------------

    def accept_profile(self, profile: dict[str, Any]) -> str:
        if self.reject_profiles:
            return "Rejected"
        purpose = profile.get("charging_profile_purpose", "TxDefaultProfile")
        if purpose == "TxProfile" and profile.get("transaction_id") not in (
            None,
            self.transaction_id,
        ):
            return "Rejected"
        self.profiles[purpose] = (profile, self.clock.now())
        self.reevaluate()
        return "Accepted"

    def limit_w(self) -> float:
        now = self.clock.now()
        for purpose in ("TxProfile", "TxDefaultProfile"):
            if purpose == "TxProfile" and self.transaction_id is None:
                continue
            entry = self.profiles.get(purpose)
            if entry is None:
                continue
            profile, started = entry
            lim = P.limit_at(profile, now, started_at=started)
            if lim is None:
                continue
            unit = profile["charging_schedule"]["charging_rate_unit"]
            return min(self.max_power_w, P.to_watts(lim, unit, self.phases))
        return self.max_power_w

    def reevaluate(self) -> None:
        offered = self.limit_w() if self.transaction_id is not None else 0.0
        self.ev.set_offered(offered)

    def register_wh(self) -> float:
        self.ev.advance()
        return self.register_base_wh + self.ev.delivered_kwh * 1000

    def _status_now(self) -> str:
        if not self.ev.plugged_in:
            return "Available"
        if self.transaction_id is None:
            return "Preparing"
        if self.limit_w() <= 0:
            return "SuspendedEVSE"
        if self.ev.acceptance_w() <= 0:
            return "SuspendedEV"
        return "Charging"

    # --- messages ---------------------------------------------------------------------------

    async def _call(self, payload: Any) -> Any:
        if self.client is None:
            return None
        with contextlib.suppress(Exception):
            return await self.client.call(payload)
        return None

    async def start_transaction(self, id_tag: str = "FREE") -> None:
        res = await self._call(call.StartTransaction(
            connector_id=1, id_tag=id_tag, meter_start=int(self.register_wh()),
            timestamp=self.clock.now().isoformat(),
        ))  # fmt: skip
        if res is not None:
            self.transaction_id = res.transaction_id
            self.reevaluate()
            await self._send_status()

    async def stop_transaction(self, reason: str = "EVDisconnected") -> None:
        tx, self.transaction_id = self.transaction_id, None
        self.profiles.pop("TxProfile", None)
        self.reevaluate()
        if tx is not None:
            await self._call(call.StopTransaction(
                meter_stop=int(self.register_wh()), timestamp=self.clock.now().isoformat(),
                transaction_id=tx, reason=reason,
            ))  # fmt: skip
        await self._send_status()

    async def _send_status(self) -> None:
        status = self._status_now()
        self.status = status
        await self._call(
            call.StatusNotification(connector_id=1, error_code="NoError", status=status)
        )

    async def _send_meter(self) -> None:
        sampled = [
            {"value": f"{self.ev.draw_w():.1f}", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": f"{self.register_wh():.1f}", "measurand": "Energy.Active.Import.Register",
             "unit": "Wh"},
        ]  # fmt: skip
        if self.ev.reports_soc:
            sampled.append(
                {"value": f"{self.ev.soc_pct:.1f}", "measurand": "SoC", "unit": "Percent"}
            )
        await self._call(call.MeterValues(
            connector_id=1, transaction_id=self.transaction_id,
            meter_value=[{"timestamp": self.clock.now().isoformat(), "sampled_value": sampled}],
        ))  # fmt: skip

    # --- loops ------------------------------------------------------------------------------

    def drop_connection(self) -> None:
        """Fault: the connection drops; the charger reconnects by itself."""
        self._drop.set()

    def stop(self) -> None:
        self._stop.set()
        self._drop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, websockets.exceptions.WebSocketException):
                await self._session()
            self.connected.clear()
            if not self._stop.is_set():
                await asyncio.sleep(0.05)

    async def _session(self) -> None:
        headers = None
        if self.password is not None:
            import base64

            token = base64.b64encode(f"{self.cp_id}:{self.password}".encode()).decode()
            headers = {"Authorization": f"Basic {token}"}
        async with websockets.connect(
            self.url,
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=headers,
        ) as ws:
            self._ws = ws
            self.client = _Client(self, ws)
            reader = asyncio.get_running_loop().create_task(self.client.start())
            self._drop.clear()
            await self._call(call.BootNotification(charge_point_vendor="flexd-sim",
                                                   charge_point_model="SIM-7"))  # fmt: skip
            self.boots += 1
            await self._send_status()
            self.connected.set()
            ticker = asyncio.get_running_loop().create_task(self._ticker())
            try:
                await self._drop.wait()
            finally:
                ticker.cancel()
                reader.cancel()
                self.client = None
                with contextlib.suppress(BaseException):
                    await ticker
                with contextlib.suppress(BaseException):
                    await reader

    async def _ticker(self) -> None:
        since_meter = since_beat = 0.0
        await self._send_meter()
        while True:
            await self.clock.sleep(self.tick_s)
            since_meter += self.tick_s
            since_beat += self.tick_s
            # Home chargers start a session when a car plugs in (free vend), and end it on unplug.
            if self.ev.plugged_in and self.transaction_id is None and self.auto_start:
                await self._send_status()
                await self.start_transaction()
            elif not self.ev.plugged_in and self.transaction_id is not None:
                await self.stop_transaction()
            self.reevaluate()
            if self._status_now() != self.status:
                await self._send_status()
            if self.silent:
                continue
            if since_meter >= self.meter_interval_s:
                since_meter = 0.0
                await self._send_meter()
            if since_beat >= self.heartbeat_s:
                since_beat = 0.0
                await self._call(call.Heartbeat())


async def run_cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator ocpp-charger")
    parser.add_argument("--csms", required=True, help="ws://127.0.0.1:PORT/ID")
    parser.add_argument("--id", default=None, help="charge point id (default: the URL's last part)")
    parser.add_argument("--soc", type=float, default=30.0)
    parser.add_argument("--password", default=None)
    args = parser.parse_args(argv)
    cp_id = args.id or args.csms.rstrip("/").split("/")[-1]
    clock = SystemClock()
    ev = EV(clock, soc_kwh=60 * args.soc / 100, plugged_in=True)
    sim = OcppChargerSimulator(args.csms, cp_id, ev, clock, password=args.password)
    print(f"ocpp charge point {cp_id} dialling {sim.url} at {datetime.now(UTC).isoformat()}",
          flush=True)  # fmt: skip
    await sim.run()
