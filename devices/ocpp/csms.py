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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import structlog
from ocpp import exceptions as ocpp_errors
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
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
from devices.ocpp import lenient as L

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
    quirks: set[str] = field(default_factory=set)  # what was normalised in its frames
    # Some chargers refuse TxDefaultProfile (they take TxProfile only): flexd then caps the
    # charge point with a ChargePointMaxProfile until a transaction's own profile lands.
    tx_default_refused: bool = False
    max_profile_id: int | None = None


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


def _action(name: str) -> Any:
    """A handler for an incoming CALL, read leniently (see :mod:`devices.ocpp.lenient`)."""
    return on(name, skip_schema_validation=True)


class CsmsChargePoint(ChargePoint):
    """The central system's side of one charger connection.

    Every incoming frame is read leniently: extra fields are ignored, enums matched without
    case, numbers and strings taken either way; each such quirk is logged once per charger
    and kept on the record (``quirks``). Replies are built from the library's dataclasses, and
    the tests check them against the OCPP 1.6 schemas."""

    def __init__(self, record: ChargePointRecord, connection: Any, csms: CentralSystem) -> None:
        super().__init__(record.id, connection, response_timeout=10)
        self.record = record
        self.csms = csms
        self._call_result = L.LenientResults(self.quirk)

    def quirk(self, what: str) -> None:
        if what not in self.record.quirks:
            self.record.quirks.add(what)
            log.warning("ocpp_frame_normalised", charger=self.record.id, quirk=what)

    def _seen(self) -> datetime:
        now = self.csms.clock.now()
        self.record.last_seen = now
        return now

    @_action(Action.boot_notification)
    async def on_boot(self, **kw: Any) -> Any:
        self._seen()
        L.extra_fields(kw, call.BootNotification, "BootNotification", self.quirk)
        vendor = L.as_str(kw.get("charge_point_vendor"), "chargePointVendor", self.quirk)
        model = L.as_str(kw.get("charge_point_model"), "chargePointModel", self.quirk)
        self.record.boot = {**kw, "vendor": vendor, "model": model}
        # A refusal may have been the booting charger's, not its policy: try TxDefaultProfile
        # again after every boot rather than capping the whole charge point for good.
        self.record.tx_default_refused = False
        return call_result.BootNotification(
            current_time=self.csms.clock.now().isoformat(), interval=HEARTBEAT_S,
            status=RegistrationStatus.accepted,
        )  # fmt: skip

    @_action(Action.heartbeat)
    async def on_heartbeat(self, **kw: Any) -> Any:
        L.extra_fields(kw, call.Heartbeat, "Heartbeat", self.quirk)
        return call_result.Heartbeat(current_time=self._seen().isoformat())

    @_action(Action.status_notification)
    async def on_status(self, **kw: Any) -> Any:
        self._seen()
        L.extra_fields(kw, call.StatusNotification, "StatusNotification", self.quirk)
        connector = L.as_int(kw.get("connector_id", 1), "connectorId", self.quirk, default=1)
        if connector != 0:
            self.record.status = L.status(kw.get("status", "Unavailable"), self.quirk)
            self.record.error_code = L.error_code(kw.get("error_code", "NoError"), self.quirk)
            self.record.events.append(self.record.status)
        return call_result.StatusNotification()

    @_action(Action.authorize)
    async def on_authorize(self, **kw: Any) -> Any:
        L.extra_fields(kw, call.Authorize, "Authorize", self.quirk)
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @_action(Action.start_transaction)
    async def on_start(self, **kw: Any) -> Any:
        self._seen()
        L.extra_fields(kw, call.StartTransaction, "StartTransaction", self.quirk)
        L.as_str(kw.get("id_tag", ""), "idTag", self.quirk)
        meter_start = L.as_int(kw.get("meter_start", 0), "meterStart", self.quirk)
        tx = next(self.csms.tx_ids)
        rec = self.record
        rec.transaction_id = tx
        rec.session_start_wh = meter_start
        rec.register_wh = meter_start
        return call_result.StartTransaction(
            transaction_id=tx, id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @_action(Action.stop_transaction)
    async def on_stop(self, **kw: Any) -> Any:
        self._seen()
        L.extra_fields(kw, call.StopTransaction, "StopTransaction", self.quirk)
        stop = L.as_float(kw.get("meter_stop"), "meterStop", self.quirk)
        if stop is not None:
            self.record.register_wh = stop
        tx = L.as_int(kw.get("transaction_id", -1), "transactionId", self.quirk, default=-1)
        rec = self.record
        if rec.transaction_id == tx:
            rec.transaction_id = None
            # OCPP 1.6 3.13.2: a TxProfile lives only as long as its transaction; re-sending it
            # on a reconnect would bind the next session to a transaction that has ended.
            if (rec.active_profile or {}).get("charging_profile_purpose") == "TxProfile":
                rec.active_profile = None
        rec.power_w = 0.0
        return call_result.StopTransaction()

    @_action(Action.meter_values)
    async def on_meter_values(self, **kw: Any) -> Any:
        now = self._seen()
        L.extra_fields(kw, call.MeterValues, "MeterValues", self.quirk)
        raw = kw.get("meter_value") or []
        meter_value = []
        for mv in raw if isinstance(raw, list) else []:
            if not isinstance(mv, dict):
                continue
            svs = [one for sv in mv.get("sampled_value") or []
                   if (one := L.sampled_value(sv, self.quirk)) is not None]  # fmt: skip
            meter_value.append({"timestamp": mv.get("timestamp"), "sampled_value": svs})
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
        tx = kw.get("transaction_id")
        if tx is not None and self.record.transaction_id is None:
            # learnt after a restart of the central system
            self.record.transaction_id = L.as_int(tx, "transactionId", self.quirk)
        return call_result.MeterValues()


OCPP16 = "ocpp1.6"


def _connector(profile: dict[str, Any]) -> int:
    """A ChargePointMaxProfile goes to connector 0 (OCPP 1.6 5.16.2), the rest to connector 1."""
    return 0 if profile.get("charging_profile_purpose") == "ChargePointMaxProfile" else 1


def select_subprotocol(
    conn: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """``ocpp1.6`` in any case, echoed as offered (some chargers send ``OCPP1.6``); anything
    else continues without a subprotocol, so the handshake completes and ``_handle`` closes it
    as OCPP-J 1.6 section 3.1.2 says, instead of websockets' default HTTP 400."""
    for p in offered:
        if p.casefold() == OCPP16:
            return p
    return None


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
            self._handle, self.host, self.port, subprotocols=[Subprotocol(OCPP16)],
            select_subprotocol=select_subprotocol, process_request=process_request,
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
        if (ws.subprotocol or "").casefold() != OCPP16:
            # OCPP-J 1.6 section 3.1.2: complete the handshake without the header, then close.
            await ws.close(code=1002, reason="offer the ocpp1.6 subprotocol")
            return
        if not cp_id:
            await ws.close(code=1008, reason="need /<charger id>")
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
            await cp.call(call.SetChargingProfile(connector_id=_connector(profile),
                                                  cs_charging_profiles=profile))  # fmt: skip

    async def _call(self, cp: CsmsChargePoint, payload: Any) -> Any:
        """One CALL; a CALLERROR becomes the device error tree (the ocpp library's default is
        to return None, and reading ``.status`` on that failed every later control cycle)."""
        action = type(payload).__name__
        # What flexd sends is checked against the schemas here; the library's own check is off
        # for the call because it would also refuse a quirky answer (see lenient.py).
        await L.check_outgoing(
            action, remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
        )
        try:
            res = await cp.call(payload, suppress=False, skip_schema_validation=True)
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
        payload = call.SetChargingProfile(connector_id=_connector(profile),
                                          cs_charging_profiles=profile)  # fmt: skip
        res = await self._call(cp, payload)
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
        if res.status != "Accepted":
            # A charger may refuse the read-back (OCPP 1.6: Rejected when it cannot report):
            # that is no read-back, not a refused profile, so the command is not re-sent.
            raise NotSupported(f"GetCompositeSchedule: the charger answered {res.status}")
        if not res.charging_schedule:
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

    async def clear_profile(self, cp_id: str, profile_id: int) -> bool:
        cp = self._live(cp_id)
        res = await self._call(cp, call.ClearChargingProfile(id=profile_id))
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
