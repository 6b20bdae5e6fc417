"""The daemon's operations as the app, billing and the MQTT bus see them.

The HTTP API and the MQTT bus call these methods and nothing else; the control loop reacts to
what they change through :meth:`SiteRuntime.request_replan`. Errors are typed so each edge can
translate them (HTTP 404/409/422, an MQTT error topic).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from core.clock import Clock
from devices.base import ChargerState
from flexd.config import Config
from flexd.control.preferences import InputError, Preferences, parse_preferences
from flexd.control.runtime import DeviceRuntime, Health, SiteRuntime
from flexd.obs.metrics import Metrics
from flexd.storage import DispatchRow, RatedRow, ReadingRow, Storage

DEFAULT_BOOST_MINUTES = 60


class NotFound(LookupError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.what = what


class Conflict(Exception):
    """The request is valid but the device's state does not allow it (HTTP 409)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Event:
    """Something clients may want pushed: kind is state | plan | dispatches | rated."""

    kind: str
    site: str
    subject: str  # device id, or meter id for "rated"
    payload: Any


Listener = Callable[[Event], Awaitable[None]]


class Service:
    def __init__(
        self,
        config: Config,
        storage: Storage,
        clock: Clock,
        sites: dict[str, SiteRuntime],
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.storage = storage
        self.clock = clock
        self.sites = sites
        self.metrics = metrics or Metrics()
        self.listeners: list[Listener] = []
        self.prices_known_until: datetime | None = None
        self.rater: Any = None  # flexd.energy.rater.Rater, attached by the daemon

    # --- rating -----------------------------------------------------------------------------

    async def rerate(self, meter: str, starts: set[datetime], reason: str) -> int:
        """Re-rate the local days holding ``starts``; push every new version as an event."""
        if self.rater is None or not starts:
            return 0
        from core.timegrid import local_days

        new = await self.rater.rate_days(meter, local_days(starts), reason)
        site = next((s.config.id for s in self.sites.values() if s.config.meter == meter), "")
        for row in new:
            await self.emit(Event("rated", site, meter, rated_json(row)))
        return len(new)

    # --- EV state of charge -----------------------------------------------------------------

    def resolve_ev_soc(self, dev: DeviceRuntime, at: datetime) -> None:
        """Best SoC for a charger's car through devices.ev_soc: the charger's own reading, else
        the car's cloud API, else the user's entered SoC plus the energy delivered since
        plug-in times the charger efficiency."""
        from devices.ev_soc import SocReading, UserEntry, choose_soc

        st = dev.state
        if not isinstance(st, ChargerState):
            return
        charger = None
        if st.soc_pct is not None and 0.0 <= st.soc_pct <= 100.0:
            charger = SocReading(st.soc_pct, st.soc_measured_at or st.measured_at)
        user = None
        ev = dev.config.ev
        if ev is not None:
            delivered = max(0.0, st.energy_register_kwh - dev.session_start_register_kwh)
            user = UserEntry(
                ev.initial_soc_pct, delivered, st.measured_at, ev.capacity_kwh, ev.efficiency
            )
        est = choose_soc(at, charger=charger, vehicle=dev.vehicle_soc, user=user)
        dev.soc_pct = est.soc_pct
        dev.soc_source = est.source.value
        dev.soc_measured_at = est.measured_at

    # --- lookup -----------------------------------------------------------------------------

    def device(self, device_id: str) -> DeviceRuntime:
        for site in self.sites.values():
            if device_id in site.devices:
                return site.devices[device_id]
        raise NotFound(f"device {device_id}")

    def site_of(self, device_id: str) -> SiteRuntime:
        return self.sites[self.device(device_id).site_id]

    def account_of(self, device_id: str) -> str:
        return self.site_of(device_id).config.account

    def meter_account(self, meter: str) -> str:
        for site in self.sites.values():
            if site.config.meter == meter:
                return site.config.account
        raise NotFound(f"meter {meter}")

    def devices(self, account: str | None = None) -> list[dict[str, Any]]:
        now = self.clock.now()
        return [
            d.view(now)
            for s in self.sites.values()
            if account is None or s.config.account == account
            for d in s.devices.values()
        ]

    def device_view(self, device_id: str) -> dict[str, Any]:
        return self.device(device_id).view(self.clock.now())

    async def emit(self, event: Event) -> None:
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                await listener(event)

    # --- preferences ------------------------------------------------------------------------

    def preferences(self, device_id: str) -> Preferences:
        dev = self._charger(device_id)
        return dev.preferences

    async def set_preferences(self, device_id: str, doc: Any) -> Preferences:
        dev = self._charger(device_id)
        prefs = parse_preferences(doc, base=dev.preferences)
        await self.storage.put_preferences(device_id, prefs.to_json(), self.clock.now())
        dev.preferences = prefs
        self.site_of(device_id).request_replan("preferences")
        return prefs

    # --- bump charge --------------------------------------------------------------------------

    async def active_boost(self, device_id: str) -> DispatchRow | None:
        now = self.clock.now()
        for d in await self.storage.dispatches(device_id=device_id, kind="boost", status="planned"):
            if d.start <= now < d.end:
                return d
        return None

    async def bump_charge(
        self,
        device_id: str,
        *,
        target_soc_pct: float | None = None,
        duration_minutes: int | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[DispatchRow, bool]:
        """Start a BOOST; returns (dispatch, created). A repeated idempotency key returns the
        first request's dispatch with created False."""
        dev = self._charger(device_id)
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= 200:
                raise InputError("Idempotency-Key", "must be 1..200 characters")
            existing = await self.storage.bump_by_key(device_id, idempotency_key)
            if existing is not None:
                row = await self.storage.get_dispatch(existing)
                if row is not None:
                    return row, False
        if target_soc_pct is not None and duration_minutes is not None:
            raise InputError("target_soc_pct", "give a target SoC or a duration, not both")
        if target_soc_pct is not None and not 1 <= target_soc_pct <= 100:
            raise InputError("target_soc_pct", "must be within 1..100")
        if duration_minutes is not None and not 1 <= duration_minutes <= 12 * 60:
            raise InputError("duration_minutes", "must be within 1..720")
        now = self.clock.now()
        state = dev.state
        if not isinstance(state, ChargerState) or dev.health(now) == Health.OFFLINE:
            raise Conflict("charger-offline", "the charger is not reachable")
        if not state.plugged_in:
            raise Conflict("not-plugged-in", "no car is plugged in")
        target = target_soc_pct if target_soc_pct is not None else 100.0
        if dev.soc_pct is not None and dev.soc_pct >= target - 0.5:
            raise Conflict("already-full", f"the car is at {dev.soc_pct:.0f}% already")
        if await self.active_boost(device_id) is not None:
            raise Conflict("already-boosting", "a bump charge is already running")
        minutes = duration_minutes or DEFAULT_BOOST_MINUTES
        if target_soc_pct is not None and dev.soc_pct is not None and dev.config.ev is not None:
            ev = dev.config.ev
            need_kwh = (target - dev.soc_pct) / 100 * ev.capacity_kwh / ev.efficiency
            minutes = max(1, min(12 * 60, round(need_kwh / ev.max_charge_kw * 60)))
        site = self.site_of(device_id)
        row = await self.storage.add_dispatch(
            site=site.config.id,
            meter=site.config.meter,
            device_id=device_id,
            start=now,
            end=now + timedelta(minutes=minutes),
            kind="boost",
            status="planned",
            at=now,
        )
        if idempotency_key is not None:
            await self.storage.add_bump(device_id, idempotency_key, row.id, now)
        site.request_replan("bump-start")
        await self._emit_dispatches(site, device_id)
        return row, True

    async def cancel_bump(self, device_id: str) -> DispatchRow:
        self._charger(device_id)
        active = await self.active_boost(device_id)
        if active is None:
            raise Conflict("not-boosting", "no bump charge is running")
        now = self.clock.now()
        await self.storage.update_dispatch(active.id, at=now, end=now)
        self.site_of(device_id).request_replan("bump-end")
        row = await self.storage.get_dispatch(active.id)
        assert row is not None
        await self._emit_dispatches(self.site_of(device_id), device_id)
        return row

    async def dispatches(
        self,
        device_id: str,
        status: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[DispatchRow]:
        self.device(device_id)
        if status not in (None, "planned", "completed"):
            raise InputError("status", "must be planned or completed")
        return await self.storage.dispatches(
            device_id=device_id, status=status, start=start, end=end
        )

    async def _emit_dispatches(self, site: SiteRuntime, device_id: str) -> None:
        now = self.clock.now()
        rows = await self.storage.dispatches(device_id=device_id, start=now - timedelta(hours=24))
        await self.emit(Event("dispatches", site.config.id, device_id, [r.to_json() for r in rows]))

    # --- billing ----------------------------------------------------------------------------

    async def upsert_readings(self, meter: str, rows: Sequence[ReadingRow]) -> int:
        """Store validated readings; the rater re-rates the half-hours they touch."""
        changed = await self.storage.upsert_readings(rows, self.clock.now())
        if changed:
            await self.rerate(meter, {r.start for r in rows}, "readings")
        return changed

    def rated_slots(
        self, meter: str, start: datetime, end: datetime, all_versions: bool = False
    ) -> AsyncIterator[RatedRow]:
        return self.storage.iter_rated(meter, start, end, all_versions)

    # --- ops --------------------------------------------------------------------------------

    async def readiness(self) -> dict[str, Any]:
        now = self.clock.now()
        try:
            db_ok = await self.storage.ping()
        except Exception:
            db_ok = False
        polled = all(d.last_ok is not None for s in self.sites.values() for d in s.devices.values())
        prices = self.prices_known_until is not None and self.prices_known_until > now
        return {
            "ready": db_ok and polled and prices,
            "database": db_ok,
            "devices_polled": polled,
            "prices_known": prices,
        }

    def _charger(self, device_id: str) -> DeviceRuntime:
        dev = self.device(device_id)
        if dev.kind != "charger":
            raise Conflict("not-a-charger", f"device {device_id} is not an EV charger")
        return dev


def rated_json(row: RatedRow) -> dict[str, Any]:
    """One rated slot with the rated.csv contract's field names (money and kWh as strings)."""
    return {
        "meter": row.meter,
        "start": row.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settlement_date": row.settlement_date,
        "settlement_period": row.settlement_period,
        "register": row.register,
        "kwh": str(row.kwh),
        "band": row.band,
        "unit_rate_p": str(row.unit_rate_p),
        "cost_p": str(row.cost_p),
        "version": row.version,
    }


def decimal_kwh(value: float) -> Decimal:
    return Decimal(str(round(value, 3)))
