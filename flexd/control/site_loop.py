"""One site's control cycle: notice what changed, re-plan when it matters, send each device its
part of the plan, keep SMART/BOOST dispatches up to date, and close half-hours for rating."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from core.clock import Clock
from core.timegrid import half_hour_start
from devices.base import (
    BatteryMode,
    ChargeNow,
    ChargeProfile,
    ChargerCommand,
    ChargerState,
    CommandResult,
    InverterCommand,
    InverterState,
    SetReserve,
    StopCharging,
    battery_modes,
)
from devices.errors import DeviceError
from devices.retry import with_timeout
from flexd.control.dispatch_rules import charge_profile, inverter_command
from flexd.control.dispatches import DispatchBook
from flexd.control.ev_soc import resolve_ev_soc
from flexd.control.events import Event, EventBus
from flexd.control.plan import Plan
from flexd.control.planner import Planner
from flexd.control.runtime import DeviceRuntime, Health, SiteRuntime
from flexd.control.solve_queue import SolveQueue, urgency
from flexd.energy.rater import Rater
from flexd.energy.site_meter import RegisterHistory, SiteMeter
from flexd.fleet.journal import NoLeaseLeft
from flexd.obs.metrics import Metrics
from flexd.storage import Storage

if TYPE_CHECKING:
    from flexd.fleet.journal import CommandJournal

log = structlog.get_logger("flexd.site")


@dataclass
class SiteState:
    """What a site's loop remembers between cycles (all of it rebuildable after a restart)."""

    meter: SiteMeter
    plugged: dict[str, bool] = field(default_factory=dict)
    registers: dict[str, RegisterHistory] = field(default_factory=dict)
    last_slot: datetime | None = None
    plan: Plan | None = None
    # The last command per device, with the charging session it was sent in: a new session (a
    # charger that rebooted and started a new transaction) must get the command again at once.
    sent: dict[str, tuple[object, str | None]] = field(default_factory=dict)
    sent_at: dict[str, datetime] = field(default_factory=dict)
    # The command a device last refused, and how many times in a row.
    refused: dict[str, tuple[object, int]] = field(default_factory=dict)
    reserve_sent_at: dict[str, datetime] = field(default_factory=dict)
    cycles: int = 0
    last_cycle_s: float = 0.0  # real seconds the last cycle took
    last_replan_latency_s: float | None = None  # real seconds from request to stored plan
    tariff_view: dict[str, object] | None = None  # the band and prices now, as last published


@dataclass(frozen=True, slots=True)
class LoopParts:
    """What every site's loop shares: the clock, storage, metrics, the event bus, the dispatch
    book and the rater (never the API facade)."""

    clock: Clock
    storage: Storage
    metrics: Metrics
    events: EventBus
    dispatches: DispatchBook
    rater: Rater
    # A fleet's command journal (flexd.fleet.journal): each command is recorded under the
    # site's epoch before it is sent, and not sent when the lease is lost.
    journal: CommandJournal | None = None


class SiteLoop:
    RESEND_EVERY = timedelta(minutes=30)  # re-assert commands the device may have dropped
    RETRIES_NOT_HONOURED = 3  # then a refused command waits for RESEND_EVERY

    def __init__(
        self, site: SiteRuntime, parts: LoopParts, planner: Planner,
        executor: Executor | SolveQueue | None = None,
    ) -> None:  # fmt: skip
        self.site = site
        # The daemon passes one queue shared by every site (most urgent re-plans first); a bare
        # executor gets a queue of its own.
        self.solves = executor if isinstance(executor, SolveQueue) else SolveQueue(
            executor, os.cpu_count() or 2)
        self.clock = parts.clock
        self.storage = parts.storage
        self.metrics = parts.metrics
        self.events = parts.events
        self.dispatches = parts.dispatches
        self.rater = parts.rater
        self.journal = parts.journal
        self.planner = planner
        self.state = SiteState(meter=SiteMeter(site.config.meter))
        self.log = log.bind(site=site.config.id)

    # --- telemetry (called by the pollers) ------------------------------------------------------

    async def on_state(self, dev: DeviceRuntime) -> None:
        st = dev.state
        at = self.clock.now()
        if isinstance(st, InverterState):
            self.state.meter.sample_grid(at, st.grid_w, st.grid_import_kwh, st.grid_export_kwh)
            self.planner.forecaster.observe(at, st.load_w, st.pv_w)
            margin = self.site.config.replan_soc_margin_pct
            expected = self._expected_battery_soc_pct(at)
            if expected is not None and abs(st.battery_soc_pct - expected) > margin:
                self.site.request_replan("soc-off-plan")
        elif isinstance(st, ChargerState):
            self.state.meter.sample_ev(dev.id, at, st.energy_register_kwh)
            self.state.registers.setdefault(dev.id, RegisterHistory()).add(
                at, st.energy_register_kwh
            )
            was = self.state.plugged.get(dev.id)
            if was is not None and st.plugged_in != was:
                self.site.request_replan("plug-in" if st.plugged_in else "unplug")
                if st.plugged_in:
                    dev.plugged_in_at = at
                    dev.session_start_register_kwh = st.energy_register_kwh
            if was is None and st.plugged_in and dev.plugged_in_at is None:
                dev.plugged_in_at = at
                dev.session_start_register_kwh = st.energy_register_kwh
            self.state.plugged[dev.id] = st.plugged_in
            resolve_ev_soc(dev, at)
            if st.plugged_in and dev.plugged_in_at is not None:
                ready_by = dev.preferences.ready_by_after(dev.plugged_in_at)
                if dev.ready_by != ready_by:
                    dev.ready_by, dev.soc_at_ready_by = ready_by, None
            if dev.ready_by is not None and dev.soc_at_ready_by is None and at >= dev.ready_by:
                dev.soc_at_ready_by = dev.soc_pct
                self.log.info("ready_by_reached", device=dev.id, soc_pct=dev.soc_pct)
        await self.events.emit(Event("state", self.site.config.id, dev.id, dev.view(at)))

    def _expected_battery_soc_pct(self, at: datetime) -> float | None:
        plan = self.state.plan
        if plan is None or plan.battery_soc_kwh is None or plan.battery_capacity_kwh <= 0:
            return None
        i = plan.slot_index(at)
        if i is None or i == 0:
            return None
        return 100.0 * plan.battery_soc_kwh[i - 1] / plan.battery_capacity_kwh

    # --- the cycle ------------------------------------------------------------------------------

    async def cycle(self) -> None:
        began = time.perf_counter()
        now = self.clock.now()
        reasons, requested = self.site.take_reasons()
        self.state.last_replan_latency_s = None
        slot = half_hour_start(now)
        await self.close_half_hours(now)
        if self.state.last_slot != slot:
            reasons.add("half-hour")
            self.state.last_slot = slot
        if self.state.plan is None:
            reasons.add("start")
        await self._complete_dispatches(now)
        metrics = self.metrics
        if reasons:
            await self._replan(now, reasons)
            if requested is not None:
                latency = time.perf_counter() - requested
                self.state.last_replan_latency_s = latency
                trigger = "prices" if "prices" in reasons else min(reasons)
                metrics.replan_latency.observe(latency, trigger=trigger)
        sent, not_honoured = await self._dispatch(now)
        await self._keep_reserve(now)
        self.state.cycles += 1
        metrics.control_cycles.inc(site=self.site.config.id)
        await self._publish_tariff_now(now)
        await self.storage.set_kv(f"meter:{self.site.config.id}", self.state.meter.dump())
        self.state.last_cycle_s = time.perf_counter() - began
        metrics.cycle_seconds.observe(self.state.last_cycle_s)
        self._log_cycle(now, reasons, sent, not_honoured)

    async def _publish_tariff_now(self, now: datetime) -> None:
        plan = self.state.plan
        smart = plan is not None and any(
            s <= now < e for spans in plan.ev_dispatches.values() for s, e, _ in spans
        )
        view = self.planner.now_view(now, smart)
        if view != self.state.tariff_view:
            self.state.tariff_view = view
            sid = self.site.config.id
            await self.events.emit(Event("tariff", sid, sid, view))

    def _log_cycle(self, now: datetime, reasons: set[str], sent: int, not_honoured: int) -> None:
        fields: dict[str, Any] = {"at": now.isoformat(), "sent": sent}
        if reasons:
            fields["replan"] = ",".join(sorted(reasons))
            if self.state.last_replan_latency_s is not None:  # real s, request to stored plan
                fields["replan_s"] = round(self.state.last_replan_latency_s, 3)
        if not_honoured:
            fields["not_honoured"] = not_honoured
        for dev in self.site.devices.values():
            st = dev.state
            health = dev.health(now)
            if isinstance(st, InverterState):
                fields[dev.id] = f"{st.battery_soc_pct:.0f}% {st.mode} grid {st.grid_w:.0f}W"
            elif isinstance(st, ChargerState):
                soc = "?" if dev.soc_pct is None else f"{dev.soc_pct:.0f}%"
                fields[dev.id] = (
                    f"{'plugged' if st.plugged_in else 'unplugged'} {st.charging_w:.0f}W ev {soc}"
                )
            if health != Health.ONLINE:
                fields[dev.id] = f"{fields.get(dev.id, '')} [{health}]".strip()
        plan = self.state.plan
        if plan is not None:
            fields["plan_p"] = round(plan.objective_p, 1)
            if plan.fallback_slots:
                fields["fallback_price_slots"] = plan.fallback_slots
        self.log.info("cycle", **fields)

    # --- planning --------------------------------------------------------------------------------

    async def _replan(self, now: datetime, reasons: set[str]) -> None:
        boosts = {
            ch.id: b
            for ch in self.site.chargers()
            if (b := await self.dispatches.active_boost(ch.id)) is not None
        }
        # The snapshot is taken here, on the event loop; the solve runs on it alone in a thread,
        # so pollers and the API keep going meanwhile and cannot change what it reads.
        snapshot = self.planner.snapshot(self.site, now, boosts, self.state.plan)
        result = await self.solves.solve(urgency(reasons), self.planner, snapshot)
        if result is None:
            return
        why = ",".join(sorted(reasons))
        # Stored first (the plan with its dispatches, one transaction), kept in memory after:
        # a write that fails leaves the loop on the plan the database has.
        await self.dispatches.record_plan(
            self.site, now, why, Decimal(str(round(result.objective_p, 4))), result.to_json(),
            result,
        )  # fmt: skip
        self.state.plan = result
        self.site.plan = result
        self.site.plan_made_at = now
        metrics = self.metrics
        metrics.plans.inc(site=self.site.config.id)
        metrics.plan_solve.observe(result.solve_s, site=self.site.config.id)
        for dev_id in self.site.devices:
            await self.events.emit(
                Event("plan", self.site.config.id, dev_id, result.next_24h(dev_id))
            )

    async def _complete_dispatches(self, now: datetime) -> None:
        touched = await self.dispatches.complete_due(self.site, now, self.state.registers)
        if touched:
            await self.rater.rerate(self.site.config.meter, touched, "dispatch-completed")

    # --- dispatching -----------------------------------------------------------------------------

    async def _dispatch(self, now: datetime) -> tuple[int, int]:
        plan = self.state.plan
        sent = not_honoured = 0
        if plan is None:
            return 0, 0
        i = plan.slot_index(now)
        for dev in self.site.devices.values():
            if dev.adapter is None or not dev.usable(now):
                continue
            command: InverterCommand | ChargerCommand | None = None
            if dev.kind == "inverter" and i is not None:
                command = inverter_command(plan.slot(i), battery_modes(dev.adapter))
            elif dev.kind == "charger":
                command = await self._charger_command(dev, now, plan)
            if command is None:
                continue
            last_at = self.state.sent_at.get(dev.id)
            if (
                self.state.sent.get(dev.id) == (command, _session(dev))
                and last_at
                and now - last_at < self.RESEND_EVERY
            ):
                continue
            result = await self._send(dev, command)
            sent += 1
            if result is not None and not result.honoured:
                not_honoured += 1
        return sent, not_honoured

    async def _keep_reserve(self, now: datetime) -> None:
        """Make the site's reserve the inverter's own floor. The planner never plans below it,
        but a battery exporting at full power keeps going until the next cycle, and a cycle can
        be late (or flexd can stop): only the inverter's reserve stops it at the floor then. The
        reserve is only ever raised to the site's, never lowered (an owner's higher one and a
        hold at a higher SoC stay), and at most once per resend interval per device."""
        floor = float(self.site.config.reserve_pct)
        for dev in self.site.devices.values():
            st = dev.state
            if dev.kind != "inverter" or dev.adapter is None or not dev.usable(now):
                continue
            if not isinstance(st, InverterState) or st.reserve_pct >= floor - 0.5:
                continue
            if st.mode in (BatteryMode.HOLD, BatteryMode.FORCE_CHARGE):
                continue  # some brands hold by setting the reserve to the SoC: leave it be
            last = self.state.reserve_sent_at.get(dev.id)
            if last is not None and now - last < self.RESEND_EVERY:
                continue
            self.state.reserve_sent_at[dev.id] = now
            await self._apply(dev, SetReserve(floor))

    async def _charger_command(
        self, dev: DeviceRuntime, now: datetime, plan: Plan
    ) -> ChargerCommand | None:
        st = dev.state
        if not isinstance(st, ChargerState):
            return None
        if not st.plugged_in:
            # Chargers start at full power when a car plugs in: a standing zero default profile
            # keeps it waiting for the plan (on IO Go, charging only inside SMART dispatches).
            return StopCharging()
        if await self.dispatches.active_boost(dev.id) is not None:
            return ChargeNow()
        starts, kwh = plan.ev_series(dev.id)
        max_w = (dev.config.ev.max_charge_kw if dev.config.ev else 7.4) * 1000
        profile = charge_profile(starts, kwh, plan.slot_hours, max_w)
        # Drop periods already over so an unchanged plan gives an unchanged command.
        live = tuple(p for p in profile.periods if p.end > now)
        if not live:
            return StopCharging()
        return ChargeProfile(live)

    async def _apply(
        self, dev: DeviceRuntime, command: InverterCommand | ChargerCommand
    ) -> CommandResult | None:
        """One command to one device, bounded, counted and logged; None when it failed."""
        metrics = self.metrics
        assert dev.adapter is not None
        kind = type(command).__name__
        # In a fleet, recorded under the site's epoch first (StaleEpoch: not sent at all).
        journal = self.journal
        timeout = dev.config.timeout_s * 3
        entry = None
        if journal is not None:  # never longer than the lease left: over before it can lapse
            try:
                entry, budget = await journal.sent(dev.id, kind)
            except NoLeaseLeft as exc:
                self.log.warning("command_skipped", device=dev.id, command=kind, why=str(exc))
                return None
            timeout = min(timeout, budget)
        try:
            result: CommandResult = await with_timeout(
                dev.adapter.apply(command),  # type: ignore[arg-type]
                timeout,
                f"{dev.id} apply",
            )
        except DeviceError as exc:
            metrics.commands_sent.inc(device=dev.id, command=kind, outcome="error")
            self.log.warning("command_failed", device=dev.id, command=kind, error=str(exc))
            if journal is not None and entry is not None:
                await journal.done(entry, "error")
            return None
        except asyncio.CancelledError:
            if journal is not None and entry is not None:
                journal.cancelled(entry)
            raise
        if journal is not None and entry is not None:
            await journal.done(entry, "honoured" if result.honoured else "refused")
        metrics.commands_sent.inc(device=dev.id, command=kind, outcome="ok")
        if not result.honoured:
            metrics.commands_not_honoured.inc(device=dev.id, command=kind)
            self.log.warning(
                "command_not_honoured", device=dev.id, command=kind, detail=result.detail
            )
        return result

    async def _send(
        self, dev: DeviceRuntime, command: InverterCommand | ChargerCommand
    ) -> CommandResult | None:
        """A plan's command, remembered so an unchanged one is not sent again every cycle."""
        result = await self._apply(dev, command)
        if result is None:
            return None
        key = (command, _session(dev))
        self.state.sent[dev.id] = key
        self.state.sent_at[dev.id] = self.clock.now()
        if not result.honoured:
            # Try again next cycle rather than waiting for the resend interval, a few times: a
            # device that keeps refusing the same command gets it at the resend interval only.
            prev = self.state.refused.get(dev.id)
            refused = prev[1] + 1 if prev is not None and prev[0] == key else 1
            self.state.refused[dev.id] = (key, refused)  # counted per command, not per device
            if refused < self.RETRIES_NOT_HONOURED:
                self.state.sent.pop(dev.id, None)
        else:
            self.state.refused.pop(dev.id, None)
        return result

    # --- rating ------------------------------------------------------------------------------

    async def close_half_hours(self, now: datetime) -> None:
        """Store every closed half-hour, then forget it (only after the commit), then rate it.
        A failed write leaves the half-hours in memory for the next cycle; a failed rating
        leaves the stored readings to be rated again (the rater keeps the day waiting)."""
        rows = self.state.meter.closed(now)
        if not rows:
            return
        await self.storage.upsert_readings(rows, now)
        self.state.meter.stored(rows)
        # Saved at once: a restart must not replay half-hours that are already stored.
        await self.storage.set_kv(f"meter:{self.site.config.id}", self.state.meter.dump())
        await self.rater.rerate(self.site.config.meter, {r.start for r in rows}, "closed")

    async def safe_mode(self) -> None:
        """Leave every device safe: inverters in self-use, chargers not forced."""
        from devices.base import BatteryMode, SetBatteryMode

        for dev in self.site.devices.values():
            if dev.adapter is None:
                continue
            cmd: InverterCommand | ChargerCommand = (
                SetBatteryMode(BatteryMode.SELF_USE) if dev.kind == "inverter" else StopCharging()
            )
            try:
                await self._send(dev, cmd)
            except Exception as exc:  # shutting down: report, carry on with the others
                self.log.warning("safe_mode_failed", device=dev.id, error=str(exc))


def _session(dev: DeviceRuntime) -> str | None:
    """The charging session a charger's command belongs to (None for inverters)."""
    return dev.state.session_id if isinstance(dev.state, ChargerState) else None
