"""flexd's OCPP 1.6J central system: chargers dial in over a websocket, one path per charger.

A :class:`ChargePointRecord` per charger id outlives its connections, so a charger that drops
and reconnects mid-session keeps its transaction, and the central system re-sends the active
charging profile on the new connection. Optional HTTP basic auth per charger id (OCPP security
profile 1: the username is the charger id).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import structlog
from ocpp import exceptions as ocpp_errors
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    ChargingProfileStatus,
    RegistrationStatus,
)
from websockets.asyncio.server import ServerConnection, basic_auth, serve
from websockets.typing import Subprotocol

from core.clock import Clock
from devices.errors import BadPayload, DeviceUnavailable, NotSupported

log = structlog.get_logger("flexd.ocpp")
HEARTBEAT_S = 300


@dataclass
class ChargePointRecord:
    id: str
    connected: bool = False
    boot: dict[str, Any] = field(default_factory=dict)
    status: str = "Unavailable"
    error_code: str = "NoError"
    transaction_id: int | None = None
    power_w: float = 0.0
    register_wh: float = 0.0
    session_start_wh: float = 0.0
    soc_pct: float | None = None
    soc_at: datetime | None = None
    last_seen: datetime | None = None
    meter_at: datetime | None = None
    active_profile: dict[str, Any] | None = None
    profile_started_at: datetime | None = None
    connection: CsmsChargePoint | None = None
    reconnects: int = 0
    events: list[str] = field(default_factory=list)


# OCPP 1.6 SampledValue.phase: a value with no phase is the total; L1/L2/L3 (or L1-N...) are
# per-line parts, summed when the charger sends no total (an 11 kW three-phase session reports
# about 3.7 kW a line). N, L1-L2 and the like are never added to a power or an energy.
LINE_PHASES = frozenset({"L1", "L2", "L3", "L1-N", "L2-N", "L3-N"})


def _when(mv: Any) -> datetime | None:
    try:
        t = datetime.fromisoformat(str(mv.get("timestamp", "")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def sampled_values(meter_value: list[Any]) -> dict[str, tuple[float, str | None]]:
    """The newest value of each measurand in a MeterValues payload (snake_case keys): entries
    are taken in timestamp order, not message order (a charger may flush buffered, older
    readings after a newer one), and per-line values are summed where there is no total."""
    out: dict[str, tuple[float, str | None]] = {}
    timed = [(t, i, mv) for i, mv in enumerate(meter_value) if (t := _when(mv)) is not None]
    untimed = [mv for mv in meter_value if _when(mv) is None]
    for mv in [*untimed, *(mv for _t, _i, mv in sorted(timed, key=lambda x: (x[0], x[1])))]:
        totals: dict[str, tuple[float, str | None]] = {}
        lines: dict[str, tuple[float, str | None]] = {}
        for sv in mv.get("sampled_value", []):
            measurand = sv.get("measurand", "Energy.Active.Import.Register")
            try:
                value = float(sv["value"])
            except (KeyError, ValueError, TypeError):
                continue
            phase = sv.get("phase")
            if phase is None:
                totals[measurand] = (value, sv.get("unit"))
            elif phase in LINE_PHASES:
                prev = lines.get(measurand, (0.0, sv.get("unit")))
                lines[measurand] = (prev[0] + value, prev[1])
        out.update(lines)
        out.update(totals)  # a total, where given, is the charger's own word
    return out


class CsmsChargePoint(ChargePoint):
    """The central system's side of one charger connection."""

    def __init__(self, record: ChargePointRecord, connection: Any, csms: CentralSystem) -> None:
        super().__init__(record.id, connection, response_timeout=10)
        self.record = record
        self.csms = csms

    def _seen(self) -> datetime:
        now = self.csms.clock.now()
        self.record.last_seen = now
        return now

    @on(Action.boot_notification)
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str, **kw: Any) -> Any:
        self._seen()
        self.record.boot = {"vendor": charge_point_vendor, "model": charge_point_model, **kw}
        return call_result.BootNotification(
            current_time=self.csms.clock.now().isoformat(), interval=HEARTBEAT_S,
            status=RegistrationStatus.accepted,
        )  # fmt: skip

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> Any:
        return call_result.Heartbeat(current_time=self._seen().isoformat())

    @on(Action.status_notification)
    async def on_status(self, connector_id: int, error_code: str, status: str, **kw: Any) -> Any:
        self._seen()
        if connector_id != 0:
            self.record.status = status
            self.record.error_code = error_code
            self.record.events.append(status)
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> Any:
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.start_transaction)
    async def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str,
                       **kw: Any) -> Any:  # fmt: skip
        self._seen()
        tx = next(self.csms.tx_ids)
        self.record.transaction_id = tx
        self.record.session_start_wh = float(meter_start)
        self.record.register_wh = float(meter_start)
        return call_result.StartTransaction(
            transaction_id=tx, id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @on(Action.stop_transaction)
    async def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **kw: Any) -> Any:
        self._seen()
        self.record.register_wh = float(meter_stop)
        if self.record.transaction_id == transaction_id:
            self.record.transaction_id = None
        self.record.power_w = 0.0
        return call_result.StopTransaction()

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id: int, meter_value: list[Any], **kw: Any) -> Any:
        now = self._seen()
        values = sampled_values(meter_value)
        if "Power.Active.Import" in values:
            v, unit = values["Power.Active.Import"]
            self.record.power_w = v * 1000 if unit == "kW" else v
        if "Energy.Active.Import.Register" in values:
            v, unit = values["Energy.Active.Import.Register"]
            self.record.register_wh = v * 1000 if unit == "kWh" else v
        if "SoC" in values:
            self.record.soc_pct = values["SoC"][0]
            self.record.soc_at = now
        self.record.meter_at = now
        if kw.get("transaction_id") is not None and self.record.transaction_id is None:
            self.record.transaction_id = int(kw["transaction_id"])  # learnt after a restart
        return call_result.MeterValues()


class CentralSystem:
    def __init__(
        self, clock: Clock, host: str = "127.0.0.1", port: int = 0,
        passwords: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.clock = clock
        self.host, self.port = host, port
        self.passwords = passwords or {}
        self.records: dict[str, ChargePointRecord] = {}
        self.tx_ids = itertools.count(1)
        self.profile_ids = itertools.count(1)
        self._server: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def record(self, cp_id: str) -> ChargePointRecord:
        return self.records.setdefault(cp_id, ChargePointRecord(cp_id))

    async def start(self) -> int:
        process_request = None
        if self.passwords:
            process_request = basic_auth(realm="flexd", check_credentials=self._check_credentials)
        self._server = await serve(
            self._handle, self.host, self.port, subprotocols=[Subprotocol("ocpp1.6")],
            process_request=process_request,
        )  # fmt: skip
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        return self.port

    def _check_credentials(self, username: str, password: str) -> bool:
        expected = self.passwords.get(username)
        return expected is not None and expected == password

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 3)
            self._server = None

    async def _handle(self, ws: ServerConnection) -> None:
        path = (ws.request.path if ws.request else "/").split("?", 1)[0].strip("/")
        cp_id = unquote(path.split("/")[-1])  # ids may be URL-encoded ("CP%201")
        if not cp_id or ws.subprotocol != "ocpp1.6":
            await ws.close(code=1002, reason="need /<charger id> and subprotocol ocpp1.6")
            return
        if self.passwords and cp_id not in self.passwords:
            await ws.close(code=1008, reason="unknown charger")
            return
        # OCPP 1.6 security profile 1: the basic-auth user is the charge point's own id, so one
        # charger's password never opens another's connection.
        if self.passwords and getattr(ws, "username", None) != cp_id:
            await ws.close(code=1008, reason="credentials are not this charger's")
            return
        rec = self.record(cp_id)
        if rec.connected:
            rec.reconnects += 1
        else:
            rec.reconnects += 1 if rec.last_seen is not None else 0
        cp = CsmsChargePoint(rec, ws, self)
        rec.connection = cp
        rec.connected = True
        log.info("charger_connected", charger=cp_id, reconnects=rec.reconnects)
        if rec.active_profile is not None:
            task = asyncio.get_running_loop().create_task(self._resend(cp, rec.active_profile))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            await cp.start()
        except Exception:  # a dropped connection ends here
            pass
        finally:
            if rec.connection is cp:
                rec.connected = False
                rec.connection = None
            log.info("charger_disconnected", charger=cp_id)

    async def _resend(self, cp: CsmsChargePoint, profile: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)  # let the charger's boot exchange go first
        with contextlib.suppress(Exception):
            await cp.call(call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile))

    async def _call(self, cp: CsmsChargePoint, payload: Any) -> Any:
        """One CALL; a CALLERROR becomes the device error tree (the ocpp library's default is
        to return None, and reading ``.status`` on that failed every later control cycle)."""
        action = type(payload).__name__
        try:
            res = await cp.call(payload, suppress=False)
        except (ocpp_errors.NotSupportedError, ocpp_errors.NotImplementedError) as exc:
            raise NotSupported(f"{action}: the charger does not support it ({exc})") from None
        except ocpp_errors.OCPPError as exc:
            raise BadPayload(f"{action}: the charger answered CALLERROR ({exc})") from None
        except TimeoutError:
            raise DeviceUnavailable(f"{action}: no answer from the charger") from None
        if res is None:
            raise BadPayload(f"{action}: no result")
        return res

    async def set_profile(self, cp_id: str, profile: dict[str, Any]) -> bool:
        cp = self._live(cp_id)
        res = await self._call(
            cp, call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile)
        )
        accepted: bool = res.status == ChargingProfileStatus.accepted
        if accepted:
            rec = self.records[cp_id]
            rec.active_profile = profile
            rec.profile_started_at = self.clock.now()
        return accepted

    async def composite_limit(self, cp_id: str, unit: str) -> float | None:
        cp = self._live(cp_id)
        res = await self._call(cp, call.GetCompositeSchedule(connector_id=1, duration=60,
                                                             charging_rate_unit=unit))  # fmt: skip
        if res.status != "Accepted" or not res.charging_schedule:
            return None
        periods = res.charging_schedule.get("charging_schedule_period", [])
        return float(periods[0]["limit"]) if periods else None

    async def remote_start(self, cp_id: str) -> bool:
        cp = self._live(cp_id)
        res = await self._call(cp, call.RemoteStartTransaction(id_tag="flexd", connector_id=1))
        return bool(res.status == "Accepted")

    async def remote_stop(self, cp_id: str) -> bool:
        rec = self.records.get(cp_id)
        if rec is None or rec.transaction_id is None:
            return False
        cp = self._live(cp_id)
        res = await self._call(cp, call.RemoteStopTransaction(transaction_id=rec.transaction_id))
        return bool(res.status == "Accepted")

    async def clear_profiles(self, cp_id: str) -> bool:
        cp = self._live(cp_id)
        res = await self._call(cp, call.ClearChargingProfile(connector_id=1))
        self.records[cp_id].active_profile = None
        return bool(res.status == "Accepted")

    def _live(self, cp_id: str) -> CsmsChargePoint:
        rec = self.records.get(cp_id)
        if rec is None or rec.connection is None:
            raise DeviceUnavailable(f"charger {cp_id} is not connected")
        return rec.connection
