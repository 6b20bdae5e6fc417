"""The dispatch bookkeeping: SMART dispatches follow the plan, BOOST dispatches the customer's
bump charges, and every dispatch is completed with the energy the charger's register delivered.
Dispatches are what IO Go rating counts, so each change is stored, then published."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

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

    async def record_smart(self, site: SiteRuntime, now: datetime, plan: Plan) -> None:
        """Future planned SMART dispatches are replaced by the new plan's; one running now is
        kept and its end moved (a dispatch is a fact once it has started)."""
        storage = self.storage
        cfg = site.config
        for ch in site.chargers():
            intervals = plan.ev_dispatches.get(ch.id, ())
            existing = await storage.dispatches(
                device_id=ch.id, kind="smart", status="planned", start=now
            )
            running = [d for d in existing if d.start <= now]
            for d in existing:
                if d.start > now:
                    await storage.update_dispatch(d.id, at=now, status="cancelled")
            for start, end, _kwh in intervals:
                if end <= now:
                    continue
                current = next((r for r in running if r.start <= now and start <= now), None)
                if current is not None:
                    await storage.update_dispatch(current.id, at=now, end=end)
                    running.remove(current)
                    continue
                await storage.add_dispatch(
                    site=cfg.id, meter=cfg.meter, device_id=ch.id, start=max(start, now),
                    end=end, kind="smart", status="planned", at=now,
                )  # fmt: skip
            for d in running:  # the plan no longer charges now: the dispatch ends here
                await storage.update_dispatch(d.id, at=now, end=now)
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
