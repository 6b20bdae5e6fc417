"""The daemon's operations as the app, billing and the MQTT bus see them (the API facade).

The HTTP API and the MQTT bus call these methods, and nothing else calls them: the control loop
has its own parts (the event bus, the dispatch book, the rater) and reacts to what the facade
changes through :meth:`SiteRuntime.request_replan`. Errors are typed so each edge can translate
them (HTTP 404/409/422, an MQTT error topic).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from core.clock import Clock
from core.timegrid import half_hour_start
from devices.base import ChargerState
from flexd.bills import BillDesk
from flexd.config import Config
from flexd.control.dispatches import DispatchBook
from flexd.control.ev_soc import resolve_ev_soc
from flexd.control.events import Event, EventBus, Listener
from flexd.control.preferences import InputError, Preferences, parse_preferences
from flexd.control.runtime import DeviceRuntime, Health, SiteRuntime
from flexd.energy.rater import Rater
from flexd.obs.metrics import Metrics
from flexd.storage import BumpRecord, DispatchRow, RatedRow, ReadingRow, Storage
from rating.io import ReadingLimits, reading_limits

__all__ = ["BumpResult", "Conflict", "Event", "Listener", "NotFound", "Service", "Unavailable"]
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


class Unavailable(Conflict):
    """The site's owner cannot be reached just now (a fleet takeover in progress): HTTP 503,
    try again in a few seconds."""

    status = 503


@dataclass(frozen=True, slots=True)
class BumpResult:
    """The answer to a bump request: HTTP status and body, whether this request created it."""

    status: int
    body: dict[str, Any]
    created: bool
    dispatch_id: str


def _replay(first: BumpRecord, request_hash: str) -> BumpResult:
    if first.request_hash and first.request_hash != request_hash:
        raise Conflict(
            "idempotency-key-reused", "this Idempotency-Key was used with a different request"
        )
    return BumpResult(first.status, first.body, False, first.dispatch_id)


class Service:
    def __init__(
        self,
        config: Config,
        storage: Storage,
        clock: Clock,
        sites: dict[str, SiteRuntime],
        metrics: Metrics | None = None,
        *,
        events: EventBus | None = None,
        dispatch_book: DispatchBook | None = None,
        rater: Rater | None = None,
    ) -> None:
        self.config = config
        self.storage = storage
        self.clock = clock
        self.sites = sites
        self.metrics = metrics or Metrics()
        self.events = events or EventBus()
        self.dispatch_book = dispatch_book or DispatchBook(storage, clock, self.events)
        self.rater = rater  # None: readings are stored, not rated (an API without a daemon)
        self.prices_known_until: datetime | None = None
        self._bump_locks: dict[str, asyncio.Lock] = {}
        self.bills = BillDesk(storage, clock, sites)  # the billing role's bills and DD check
        # The band and prices of the half-hour now, per site, as each loop last published them
        # (the loops own the price book; the facade only hears their "tariff" events).
        self.tariff_now: dict[str, dict[str, Any]] = {}
        self.events.subscribe(self._remember_tariff)

    async def _remember_tariff(self, event: Event) -> None:
        if event.kind == "tariff":
            self.tariff_now[event.site] = dict(event.payload)

    @property
    def listeners(self) -> list[Listener]:
        return self.events.listeners

    async def emit(self, event: Event) -> None:
        await self.events.emit(event)

    def resolve_ev_soc(self, dev: DeviceRuntime, at: datetime) -> None:
        resolve_ev_soc(dev, at)

    # --- lookup -----------------------------------------------------------------------------

    def device(self, device_id: str) -> DeviceRuntime:
        for site in self.sites.values():
            if device_id in site.devices:
                return site.devices[device_id]
        raise NotFound(f"device {device_id}")

    def site(self, site_id: str, account: str | None = None) -> SiteRuntime:
        """A site by id; with ``account``, only that account's (another's is "not found")."""
        site = self.sites.get(site_id)
        if site is None or (account is not None and site.config.account != account):
            raise NotFound(f"site {site_id}")
        return site

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

    async def load_device_view(self, device_id: str) -> dict[str, Any]:
        """The device as the API shows it (a fleet instance asks the site's owner)."""
        return self.device_view(device_id)

    # --- preferences ------------------------------------------------------------------------

    def preferences(self, device_id: str) -> Preferences:
        dev = self._charger(device_id)
        return dev.preferences

    async def load_preferences(self, device_id: str) -> Preferences:
        """The preferences as the API shows them (a fleet instance reads another owner's from
        the database)."""
        return self.preferences(device_id)

    async def set_preferences(self, device_id: str, doc: Any) -> Preferences:
        dev = self._charger(device_id)
        prefs = parse_preferences(doc, base=dev.preferences)
        await self.storage.put_preferences(device_id, prefs.to_json(), self.clock.now())
        dev.preferences = prefs
        self.site_of(device_id).request_replan("preferences")
        return prefs

    # --- bump charge --------------------------------------------------------------------------

    async def active_boost(self, device_id: str) -> DispatchRow | None:
        return await self.dispatch_book.active_boost(device_id)

    async def bump_charge(
        self,
        device_id: str,
        *,
        target_soc_pct: float | None = None,
        duration_minutes: int | None = None,
        idempotency_key: str | None = None,
    ) -> BumpResult:
        """Start a BOOST. A repeat of an idempotency key answers with the first request's
        status and body and creates nothing; the same key with another body is a Conflict."""
        dev = self._charger(device_id)
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
            raise InputError("Idempotency-Key", "must be 1..200 characters")
        request = json.dumps({"target_soc_pct": target_soc_pct,
                              "duration_minutes": duration_minutes}, sort_keys=True)  # fmt: skip
        request_hash = hashlib.sha256(request.encode()).hexdigest()
        # One bump at a time per device in this process; the database's key (and its lock on
        # PostgreSQL) covers other processes.
        async with self._bump_locks.setdefault(device_id, asyncio.Lock()):
            if idempotency_key is not None:
                first = await self.storage.bump_by_key(device_id, idempotency_key)
                if first is not None:
                    return _replay(first, request_hash)
            minutes = self._boost_minutes(dev, target_soc_pct, duration_minutes)
            if await self.active_boost(device_id) is not None:
                raise Conflict("already-boosting", "a bump charge is already running")
            site = self.site_of(device_id)
            now = self.clock.now()
            row, first = await self.storage.add_boost_once(
                site=site.config.id, meter=site.config.meter, device_id=device_id, start=now,
                end=now + timedelta(minutes=minutes), at=now, key=idempotency_key,
                request_hash=request_hash,
            )  # fmt: skip
            if first is not None:  # another process won the key meanwhile
                return _replay(first, request_hash)
            assert row is not None
        site.request_replan("bump-start")
        await self.dispatch_book.publish(site.config.id, device_id)
        return BumpResult(202, row.to_json(), True, row.id)

    def _boost_minutes(
        self, dev: DeviceRuntime, target_soc_pct: float | None, duration_minutes: int | None
    ) -> int:
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
        minutes = duration_minutes or DEFAULT_BOOST_MINUTES
        if target_soc_pct is not None and dev.soc_pct is not None and dev.config.ev is not None:
            ev = dev.config.ev
            need_kwh = (target - dev.soc_pct) / 100 * ev.capacity_kwh / ev.efficiency
            minutes = max(1, min(12 * 60, round(need_kwh / ev.max_charge_kw * 60)))
        return minutes

    async def cancel_bump(self, device_id: str) -> DispatchRow:
        self._charger(device_id)
        active = await self.active_boost(device_id)
        if active is None:
            raise Conflict("not-boosting", "no bump charge is running")
        row = await self.dispatch_book.end_now(active.id)
        site = self.site_of(device_id)
        site.request_replan("bump-end")
        await self.dispatch_book.publish(site.config.id, device_id)
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

    # --- billing ----------------------------------------------------------------------------

    def reading_limits(self) -> ReadingLimits:
        """A reading must be plausible, not in the future and inside the configured window."""
        return reading_limits(
            Decimal(str(self.config.max_kwh_per_half_hour)),
            self.config.readings_window_months,
            half_hour_start(self.clock.now()),
        )

    async def upsert_readings(self, meter: str, rows: Sequence[ReadingRow]) -> int:
        """Store validated readings; the rater re-rates the half-hours they touch."""
        changed = await self.storage.upsert_readings(rows, self.clock.now())
        if changed and self.rater is not None:
            await self.rater.rerate(meter, {r.start for r in rows}, "readings")
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
