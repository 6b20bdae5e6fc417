"""Rating in the daemon: closed half-hours are rated provisionally (planned dispatches count),
then re-rated as dispatches complete or readings arrive from billing. Every version is kept;
a re-rating that changes nothing stores nothing (storage compares with the latest version)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta

import structlog

import rating
from core.clock import Clock
from core.timegrid import day_bounds, local_days
from flexd.control.events import Event, EventBus
from flexd.obs.metrics import Metrics
from flexd.storage import RatedRow, Storage
from flexd.storage.fence import Fence, StaleEpoch, fenced

log = structlog.get_logger("flexd.rater")


class Rater:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        metrics: Metrics,
        tariffs: dict[str, rating.Tariff],
        prices: rating.PriceBook | None = None,
        events: EventBus | None = None,
        site_of_meter: dict[str, str] | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.metrics = metrics
        self.tariffs = tariffs  # by meter
        self.prices = prices  # the daemon's one price book (Agile)
        self.events = events or EventBus()
        self.site_of_meter = site_of_meter or {}
        # Agile days with readings the book had no price for yet: rated when prices arrive.
        self.waiting: dict[str, set[date]] = {}
        # In a fleet: the fence of a meter's site while this instance controls it, else None.
        self.fence_of: Callable[[str], Fence | None] | None = None

    async def rerate(self, meter: str, starts: set[datetime], reason: str) -> int:
        """Re-rate the local days holding ``starts``; publish every new version."""
        if not starts or meter not in self.tariffs:
            return 0
        # Days that failed or waited before are retried with this meter's next rating.
        days = local_days(starts) | self.waiting.pop(meter, set())
        try:
            new = await self.rate_days(meter, days, reason)
        except StaleEpoch:  # a fleet site taken over: its new owner rates, never this one
            raise
        except Exception as exc:  # the readings are stored: rate them again next time
            self.waiting.setdefault(meter, set()).update(days)
            log.warning("rating_failed", meter=meter, days=sorted(d.isoformat() for d in days),
                        error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            return 0
        await self._publish(meter, new)
        return len(new)

    async def _publish(self, meter: str, rows: list[RatedRow]) -> None:
        site = self.site_of_meter.get(meter, "")
        for row in rows:
            await self.events.emit(Event("rated", site, meter, row.to_json()))

    async def retry_waiting(self) -> list[RatedRow]:
        """Re-rate the days that waited for prices; returns the versions that were new. In a
        fleet, only for meters this instance still controls, under their sites' fences."""
        new: list[RatedRow] = []
        waiting, self.waiting = self.waiting, {}
        for meter, days in waiting.items():
            fence = None
            if self.fence_of is not None:
                fence = self.fence_of(meter)
                if fence is None:
                    continue  # no longer ours: the owner rates it
            try:
                with fenced(fence):
                    rows = await self.rate_days(meter, days, "prices")
            except StaleEpoch:
                continue
            await self._publish(meter, rows)
            new.extend(rows)
        return new

    async def rate_days(self, meter: str, days: Iterable[date], reason: str) -> list[RatedRow]:
        """Rate whole local days of one meter; returns the versions that were new."""
        tariff = self.tariffs[meter]
        new: list[RatedRow] = []
        for day in sorted(days):
            new.extend(await self._rate_day(meter, tariff, day, reason))
        return new

    async def _rate_day(
        self, meter: str, tariff: rating.Tariff, day: date, reason: str
    ) -> list[RatedRow]:
        start, end = day_bounds(day)
        rows = await self.storage.readings(meter, start, end)
        if not rows:
            return []
        readings = [rating.Reading(meter, r.start, r.kwh, r.register) for r in rows]
        if tariff.kind == "agile":
            priced = [r for r in readings if r.register != "import" or self._priced(r)]
            if len(priced) < len(readings):
                # Rate what has a price now; the rest when the feed brings it (retry_waiting).
                self.waiting.setdefault(meter, set()).add(day)
                log.warning("rating_waits_for_prices", meter=meter, day=day.isoformat(),
                            unpriced=len(readings) - len(priced))  # fmt: skip
            readings = priced
            if not readings:
                return []
        # The capped allowance counts from local midday the day before.
        stored = await self.storage.dispatches(
            meter=meter, start=start - timedelta(hours=12), end=end
        )
        dispatches = [
            rating.Dispatch(meter, d.start, d.end, d.kind, d.status, d.location)
            for d in stored
            if d.status in ("planned", "completed") and d.end > d.start
        ]
        # Provisional: a half-hour whose dispatch has not completed yet still counts as planned.
        provisional = any(d.status == "planned" for d in stored)
        effective = tariff
        if provisional and tariff.dispatch_mode != "planned":
            effective = dataclasses.replace(tariff, dispatch_mode="planned")
        slots = rating.rate(effective, readings, dispatches, self.prices)
        if not slots:
            return []
        now = self.clock.now()
        why = f"{reason}{' (provisional)' if provisional else ''}"
        rated = [
            RatedRow(
                s.meter,
                s.start,
                s.register,
                0,
                s.settlement_date.isoformat(),
                s.settlement_period,
                s.kwh,
                s.band,
                s.unit_rate_p,
                s.cost_p,
                now,
                why,
            )
            for s in slots
        ]
        new = await self.storage.add_rated_versions(rated)
        self.metrics.rated_slots.inc(len(new), meter=meter)
        return new

    def _priced(self, r: rating.Reading) -> bool:
        return self.prices is not None and self.prices.get(r.start) is not None
