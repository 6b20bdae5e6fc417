"""The dispatch bookkeeping: SMART dispatches follow the plan, BOOST dispatches the customer's
bump charges, and every dispatch is completed with the energy the charger's register delivered.
Dispatches are what IO Go rating counts, so each change is stored, then published."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from core.clock import Clock
from flexd.control.events import Event, EventBus
from flexd.control.plan import Plan
from flexd.control.runtime import SiteRuntime
from flexd.energy.site_meter import RegisterHistory
from flexd.storage import DispatchRow, Storage


class DispatchBook:
    def __init__(self, storage: Storage, clock: Clock, events: EventBus) -> None:
        self.storage = storage
        self.clock = clock
        self.events = events

    async def active_boost(self, device_id: str) -> DispatchRow | None:
        now = self.clock.now()
        for d in await self.storage.dispatches(device_id=device_id, kind="boost", status="planned"):
            if d.start <= now < d.end:
                return d
        return None

    async def publish(self, site_id: str, device_id: str, hide_cancelled: bool = False) -> None:
        """Publish a charger's dispatches of the last 24 hours."""
        now = self.clock.now()
        rows = await self.storage.dispatches(device_id=device_id, start=now - timedelta(hours=24))
        payload = [r.to_json() for r in rows if not (hide_cancelled and r.status == "cancelled")]
        await self.events.emit(Event("dispatches", site_id, device_id, payload))

    async def end_now(self, dispatch_id: str) -> DispatchRow:
        now = self.clock.now()
        await self.storage.update_dispatch(dispatch_id, at=now, end=now)
        row = await self.storage.get_dispatch(dispatch_id)
        assert row is not None  # it was just updated
        return row

    async def record_plan(
        self, site: SiteRuntime, now: datetime, reason: str, objective_p: Decimal,
        payload: dict[str, Any], plan: Plan,
    ) -> None:  # fmt: skip
        """Store a new plan with the SMART dispatches it implies, in one transaction
        (Storage.store_plan: future planned ones replaced by the plan's, one running now kept
        with its end moved), then publish each charger's dispatches."""
        cfg = site.config
        smart = {
            ch.id: [(start, end) for start, end, _kwh in plan.ev_dispatches.get(ch.id, ())]
            for ch in site.chargers()
        }
        await self.storage.store_plan(cfg.id, cfg.meter, now, reason, objective_p, payload, smart)
        for ch in site.chargers():
            await self.publish(cfg.id, ch.id, hide_cancelled=True)

    async def complete_due(
        self, site: SiteRuntime, now: datetime, registers: dict[str, RegisterHistory]
    ) -> set[datetime]:
        """Complete every planned dispatch that has ended, with the energy delivered inside it;
        returns the starts of those dispatches (their half-hours re-rate). A bump charge that
        ended asks for a re-plan."""
        touched: set[datetime] = set()
        for ch in site.chargers():
            hist = registers.get(ch.id)
            for d in await self.storage.dispatches(device_id=ch.id, status="planned"):
                if d.end > now:
                    continue
                kwh = hist.delivered(d.start, d.end) if hist is not None else 0.0
                await self.storage.update_dispatch(
                    d.id, at=now, status="completed", kwh=Decimal(str(round(kwh, 3)))
                )
                touched.add(d.start)
                if d.kind == "boost":
                    site.request_replan("bump-end")
        return touched
