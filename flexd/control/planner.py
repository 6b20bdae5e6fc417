"""Builds a site's optimiser problem from what the daemon knows, solves it, and keeps plans
stable: a re-plan that would change what the devices do right now, for a saving below the
site's threshold, keeps the current slot as it was."""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import structlog

import rating
from core.timegrid import half_hour_start
from devices.base import BatteryMode, ChargerState, InverterState, battery_modes
from devices.options import BatteryOptions
from flexd.control.forecast import ProfileForecaster
from flexd.control.plan import Plan
from flexd.control.runtime import DeviceRuntime, SiteRuntime
from flexd.control.tariff_view import now_view, tariff_fallback
from flexd.storage import DispatchRow
from optimiser import EV, Battery, FirstSlot, Grid, Problem, Schedule
from optimiser import Planner as SchedulePlanner
from rating.prices import PriceBook

log = structlog.get_logger("flexd.control.planner")
SLOT = timedelta(minutes=30)
MIN_SLOTS = 16
MAX_SLOTS = 7 * 48
EPS = 1e-4


@dataclass(frozen=True, slots=True)
class PlanInput:
    """One site's planning problem, copied from live state on the event loop."""

    site_id: str
    problem: Problem
    missing: int  # slots planned on the tariff's fixed rates (no price known)
    pin: FirstSlot | None  # the current slot as the previous plan had it
    stability_threshold_p: float


class Planner:
    def __init__(self, prices: PriceBook, tariff: rating.Tariff) -> None:
        self.prices = prices
        self.tariff = tariff
        self.fallback = tariff_fallback(tariff)
        self.forecaster = ProfileForecaster()
        self.solver = new_solver()

    def now_view(self, now: datetime, smart: bool = False) -> dict[str, object]:
        return now_view(self.prices, self.tariff, now, smart)

    def snapshot(
        self,
        site: SiteRuntime,
        now: datetime,
        boosts: dict[str, DispatchRow],
        previous: Plan | None,
    ) -> PlanInput:
        """Copy what a solve needs out of live state. Runs on the event loop, so it never sees
        state half-updated by a poller; the solve then runs on this immutable value alone."""
        start = half_hour_start(now)
        inverter = next((d for d in site.inverters() if d.usable(now)), None)
        evs = [
            d for d in site.chargers()
            if d.usable(now) and isinstance(d.state, ChargerState) and d.state.plugged_in
            and d.id not in boosts and d.config.ev is not None
        ]  # fmt: skip
        end = self.prices.known_until(now)
        for d in evs:
            end = max(end, d.preferences.ready_by_after(now) + SLOT)
        n = int((end - start) / SLOT)
        n = max(MIN_SLOTS, min(MAX_SLOTS, n))
        starts = [start + i * SLOT for i in range(n)]
        imp, exp, missing = self.prices.series(start, n, self.fallback)
        load, pv = self.forecaster.forecast(starts, 0.5)
        for b in boosts.values():  # a running bump charge is load the plan must carry
            dev = site.devices.get(b.device_id)
            kw = dev.config.ev.max_charge_kw if dev is not None and dev.config.ev else 7.4
            for i, t in enumerate(starts):
                if b.start < t + SLOT and b.end > t:
                    load[i] += kw * 0.5
        battery = self._battery(site, inverter)
        ev_specs = [self._ev(d, now, start, n) for d in evs]
        problem = Problem(
            start=start,
            slot_minutes=30,
            import_price_p=np.array([float(x) for x in imp]),
            export_price_p=np.array([float(x) for x in exp]),
            load_kwh=np.asarray(load),
            pv_kwh=np.asarray(pv),
            grid=Grid(site.config.import_kw, site.config.export_kw),
            battery=battery,
            evs=tuple(ev_specs),
        )
        return PlanInput(
            site_id=site.config.id,
            problem=problem,
            missing=missing,
            pin=self._pin_from(previous, start, problem),
            stability_threshold_p=site.config.stability_threshold_p,
        )

    def solve(self, inp: PlanInput) -> Plan | None:
        """Solve a snapshot (in a worker thread): :func:`solve_input` on this site's solver."""
        return solve_input(self.solver, inp)

    # --- problem parts ------------------------------------------------------------------------

    def _battery(self, site: SiteRuntime, inverter: DeviceRuntime | None) -> Battery | None:
        if inverter is None or not isinstance(inverter.state, InverterState):
            return None
        st = inverter.state
        cap = st.battery_capacity_kwh
        if cap <= 0:
            return None
        soc = max(0.0, min(cap, cap * st.battery_soc_pct / 100))
        reserve = cap * site.config.reserve_pct / 100
        opts = inverter.config.options
        assert isinstance(opts, BatteryOptions)  # every inverter brand's options are
        modes = battery_modes(inverter.adapter)
        return Battery(
            capacity_kwh=cap,
            soc_kwh=soc,
            min_soc_kwh=min(reserve, soc),  # below reserve now: plan from here, never lower
            charge_kw=opts.max_charge_kw,
            discharge_kw=opts.max_discharge_kw,
            charge_efficiency=opts.charge_efficiency,
            discharge_efficiency=opts.discharge_efficiency,
            final_soc_kwh_min=max(reserve, min(soc, cap)) if soc >= reserve else soc,
            grid_charge=BatteryMode.FORCE_CHARGE in modes,
            grid_export=BatteryMode.FORCE_DISCHARGE in modes,
        )

    def _ev(self, d: DeviceRuntime, now: datetime, start: datetime, n: int) -> EV:
        ev = d.config.ev
        assert ev is not None
        soc_pct = d.soc_pct if d.soc_pct is not None else ev.initial_soc_pct
        soc = ev.capacity_kwh * max(0.0, min(100.0, soc_pct)) / 100
        target = max(soc, ev.capacity_kwh * d.preferences.target_soc_pct / 100)
        ready_by = d.preferences.ready_by_after(now)
        horizon_end = start + n * SLOT
        ready_by = min(ready_by, horizon_end)
        return EV(
            id=d.id,
            capacity_kwh=ev.capacity_kwh,
            soc_kwh=soc,
            target_soc_kwh=target,
            ready_by=ready_by,
            max_charge_kw=ev.max_charge_kw,
            plugged_in=tuple([True] * n),
            efficiency=ev.efficiency,
            max_charge_slots_per_day=self.tariff.allowance_blocks if self.tariff.capped else None,
        )

    # --- stability ----------------------------------------------------------------------------

    @staticmethod
    def _pin_from(prev: Plan | None, start: datetime, problem: Problem) -> FirstSlot | None:
        if prev is None:
            return None
        i = prev.slot_index(start)
        if i is None:
            return None
        ev_ids = {e.id for e in problem.evs}
        return FirstSlot(
            battery_charge_kwh=prev.battery_charge_kwh[i] if problem.battery else None,
            battery_discharge_kwh=prev.battery_discharge_kwh[i] if problem.battery else None,
            ev_charge_kwh=tuple(
                (dev, series[i]) for dev, series in prev.ev_charge_kwh.items() if dev in ev_ids
            ),
        )

    @staticmethod
    def _differs(s: Schedule, pin: FirstSlot) -> bool:
        if pin.battery_charge_kwh is not None and (
            abs(s.battery_charge_kwh[0] - pin.battery_charge_kwh) > EPS
            or abs(s.battery_discharge_kwh[0] - (pin.battery_discharge_kwh or 0.0)) > EPS
        ):
            return True
        wanted = dict(pin.ev_charge_kwh)
        return any(abs(e.charge_kwh[0] - wanted.get(e.id, e.charge_kwh[0])) > EPS for e in s.evs)

    @staticmethod
    def _result(p: Problem, s: Schedule, missing: int, solve_s: float, kept: bool) -> Plan:
        battery = p.battery
        return Plan(
            start=p.start,
            slot_minutes=p.slot_minutes,
            objective_p=s.objective_p,
            status=s.status,
            import_price_p=tuple(p.import_price_p.tolist()),
            export_price_p=tuple(p.export_price_p.tolist()),
            grid_import_kwh=tuple(s.grid_import_kwh.tolist()),
            grid_export_kwh=tuple(s.grid_export_kwh.tolist()),
            battery_charge_kwh=tuple(s.battery_charge_kwh.tolist()),
            battery_discharge_kwh=tuple(s.battery_discharge_kwh.tolist()),
            battery_soc_kwh=tuple(s.battery_soc_kwh.tolist()) if battery is not None else None,
            battery_capacity_kwh=battery.capacity_kwh if battery is not None else 0.0,
            load_kwh=tuple(p.load_kwh.tolist()),
            pv_kwh=tuple(p.pv_kwh.tolist()),
            ev_charge_kwh={e.id: tuple(e.charge_kwh.tolist()) for e in s.evs},
            ev_soc_kwh={e.id: tuple(e.soc_kwh.tolist()) for e in s.evs},
            ev_shortfall_kwh={e.id: e.shortfall_kwh for e in s.evs},
            ev_dispatches={e.id: tuple((d.start, d.end, d.kwh) for d in e.dispatches)
                           for e in s.evs},
            fallback_slots=missing,
            solve_s=solve_s,
            kept_current_slot=kept,
        )


def new_solver() -> SchedulePlanner:
    # Within half a penny of the best plan is as good as the best: on the MIP nights (grid
    # arbitrage under fixed rates) this cuts the solve ~30 % (BENCHMARKS.md).
    return SchedulePlanner(mip_abs_gap_p=0.5)


def solve_input(solver: SchedulePlanner, inp: PlanInput) -> Plan | None:
    """Solve a snapshot; keep the current slot as it was when a change there would save less
    than the site's threshold. Needs nothing but its arguments: it runs in a solver thread or
    a solver process (flexd.control.solve_procs)."""
    problem, pin = inp.problem, inp.pin
    t0 = _time.perf_counter()
    try:
        schedule = solver.solve(problem)
    except RuntimeError as exc:
        log.error("plan_failed", site=inp.site_id, error=str(exc))
        return None
    kept = False
    if pin is not None and Planner._differs(schedule, pin):
        try:
            pinned = solver.solve(_with_pin(problem, pin))
        except RuntimeError:  # what ran before is no longer possible: take the new plan
            pinned = None
        if pinned is not None:
            saving = pinned.objective_p - schedule.objective_p
            if saving < inp.stability_threshold_p:
                schedule, kept = pinned, True
    solve_s = _time.perf_counter() - t0
    return Planner._result(problem, schedule, inp.missing, solve_s, kept)


def _with_pin(p: Problem, pin: FirstSlot) -> Problem:
    import dataclasses

    return dataclasses.replace(p, first_slot=pin)
