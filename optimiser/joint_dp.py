"""Battery + one EV (+ PV), exact: a Lagrangian price on the EV's target over the exact
battery DP of :mod:`optimiser.battery_dp`.

For a price lam per kWh of the EV's target, the EV in a slot is one more grid-side segment (up
to its slot energy, lam less the tie-break cheaper than it costs), so each slot's cost stays
convex and the battery DP solves battery and EV together. The EV's energy before ready-by
grows with lam; bisection finds the price where it meets the target, and the two plans either
side of it are mixed to meet it exactly (a convex combination of two optima of the same
Lagrangian, so an optimum of the LP). A plan that breaks the EV's slot cap or minimum power is
declined, and so is a problem where export pays more than import in some slot: there the MIP's
import-or-export choice makes the slot cost non-convex. :func:`solve_convex` is the exact
solve for any fixed choice (export or import capped at 0 in each such slot), which
:mod:`optimiser.export_modes` searches over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from optimiser.assemble import assemble, costs_of, objective_of
from optimiser.battery_dp import (
    MIN_ROUND_TRIP,
    _slot_costs,
    _split,
    _value_dp,
    effective_import_price,
    grid_caps,
)
from optimiser.model import SHORTFALL_P, TIE_BREAK_P, UNSERVED_P, midday_periods
from optimiser.problem import Problem
from optimiser.schedule import Schedule

F64 = npt.NDArray[np.float64]
BISECT_STEPS = 30
# A guessed EV price (guess >= 0) is bracketed by +-GUESS_WIDTH_P and halved GUESS_STEPS
# times: 0.04 p / 2^12, 1e-5 p per kWh.
GUESS_WIDTH_P = 0.02
GUESS_STEPS = 12
# A pinned EV slot's value per kWh: above every price, so it always takes its pinned energy.
PINNED_EV_P = 1e6


def solve_joint(p: Problem) -> Schedule | None:
    """The exact plan for a battery and one EV, or None where this path does not apply."""
    b = p.battery
    if b is None or len(p.evs) != 1:
        return None
    imp_cost = effective_import_price(p).astype(np.float64)
    if (
        np.any(p.export_price_p < 0) or np.any(imp_cost < p.export_price_p)
        or np.any(imp_cost >= UNSERVED_P)
        or b.charge_efficiency * b.discharge_efficiency < MIN_ROUND_TRIP
        or b.value_p_per_kwh < 0
    ):  # fmt: skip
        return None  # export above import: import-or-export is a binary there (optimiser.modes)
    export_kwh, import_kwh, charge_kwh = grid_caps(p)
    plan = solve_convex(p, p.export_price_p, imp_cost, export_kwh, import_kwh, charge_kwh)
    return None if plan is None else plan.schedule(p, "joint-dp")


@dataclass(frozen=True, slots=True)
class JointPlan:
    """A joint plan's arrays (kWh per slot) and its model objective (pence)."""

    imp: F64
    exp: F64
    curt: F64
    unserved: F64
    u: F64  # battery AC: + charge, - discharge
    soc: F64
    charge: F64
    ev_soc: F64
    shortfall: float
    objective: float
    ev_price: float  # the Lagrange price of the EV's target (p/kWh at the meter)

    def schedule(self, p: Problem, solver: str, notes: tuple[str, ...] = ()) -> Schedule:
        return assemble(
            p, imp=self.imp, exp=self.exp, curt=self.curt, unserved=self.unserved,
            bc=np.maximum(self.u, 0.0), bd=np.maximum(-self.u, 0.0), soc=self.soc,
            ev_charge=[self.charge], ev_soc=[self.ev_soc], shortfall=[self.shortfall],
            solver=solver, notes=notes,
        )  # fmt: skip


def solve_convex(
    p: Problem, export_p: F64, import_p: F64, export_kwh: F64, import_kwh: F64, charge_kwh: F64,
    steps: int = BISECT_STEPS, guess: float = -1.0,
) -> JointPlan | None:  # fmt: skip
    """The exact plan for a battery and one EV when every slot's grid cost is convex (export
    price <= import price, or one of the two capped at 0 in the slot: a fixed import-or-export
    choice, optimiser.modes). None: infeasible, or the EV's rules broken."""
    b = p.battery
    assert b is not None
    ev = p.evs[0]
    n, h = p.n, p.slot_hours
    pin = first_slot(p, charge_kwh)
    if pin is None:
        return None
    k = p.ready_index(ev)
    target = min(ev.target_soc_kwh, ev.capacity_kwh)
    need = (target - ev.soc_kwh) / ev.efficiency if k >= 1 and target > ev.soc_kwh else 0.0
    ev_kwh = np.where(np.asarray(ev.plugged_in, dtype=bool), ev.max_charge_kw * h, 0.0)
    # Before ready-by the EV's energy earns the target's price; after it, nothing (it still
    # takes PV that would be curtailed, as the LP does, for the curtailment cost it saves).
    priced = (np.arange(n) < k).astype(np.float64)
    tie = (TIE_BREAK_P * (np.arange(n) + 1)).astype(np.float64)
    if pin.ev_kwh is not None:
        # A pinned EV slot: it takes exactly that (an EV segment dearer than anything), and
        # the target needs that much less from the rest.
        ev_kwh[0] = min(max(pin.ev_kwh, 0.0), ev_kwh[0])
        if priced[0] > 0:
            need = max(need - ev_kwh[0], 0.0) if need > 0 else 0.0
        priced[0], tie[0] = 0.0, -PINNED_EV_P
    lo, hi = b.min_soc_kwh, b.max_soc
    # Above every slot's price (over the round trips), the EV takes all it can get.
    bracket = float(max(import_p.max(), export_p.max()) / (b.charge_efficiency
                    * b.discharge_efficiency * ev.efficiency) + 1.0)  # fmt: skip
    # Zeros, not empty: plan a stays unset where no bisection runs (theta 0; 0 * NaN is NaN).
    soc_a, c_a, soc_b, c_b = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    theta, lam = _bisect(
        tie, priced, p.pv_kwh, p.load_kwh, export_kwh, import_kwh, charge_kwh,
        export_p, import_p, ev_kwh, b.discharge_kw * h, b.charge_efficiency,
        b.discharge_efficiency, lo, hi, max(lo, b.final_min), b.value_p_per_kwh, b.soc_kwh,
        pin.first, pin.soc_start, need, SHORTFALL_P * ev.efficiency, bracket, soc_a, c_a, soc_b,
        c_b, steps, guess, GUESS_WIDTH_P, GUESS_STEPS,
    )  # fmt: skip
    if np.isnan(theta):
        return None  # infeasible SoC bounds or a non-convex slot: HiGHS
    soc = theta * soc_a + (1 - theta) * soc_b
    charge = theta * c_a + (1 - theta) * c_b
    ev_soc = ev.soc_kwh + ev.efficiency * np.cumsum(charge)
    if not _ev_rules_hold(p, charge) or ev_soc.max() > ev.capacity_kwh + 1e-9:
        return None
    u = _battery_ac(soc, b.soc_kwh, b.charge_efficiency, b.discharge_efficiency)
    _, _, _, _, brk, tags, ok = _slot_costs(
        p.pv_kwh, p.load_kwh, export_kwh, import_kwh, charge_kwh, export_p, import_p,
        np.zeros(n), np.zeros(n), b.discharge_kw * h, b.charge_efficiency,
        b.discharge_efficiency,
    )  # fmt: skip
    if not ok:
        return None
    net = p.load_kwh - p.pv_kwh
    imp, exp, curt, unserved, _ = _split(brk, tags, net + charge + u, p.pv_kwh, export_kwh,
                                         np.zeros(n))  # fmt: skip
    reached = ev_soc[k - 1] if k >= 1 else ev.soc_kwh
    short = max(0.0, target - reached) if need > 0 else 0.0
    costs = costs_of(p, imp, exp, curt, unserved, np.maximum(-u, 0.0), soc, [charge], [short])
    return JointPlan(
        imp, exp, curt, unserved, u, soc, charge, ev_soc, short, objective_of(costs), lam
    )


@dataclass(frozen=True, slots=True)
class Pin:
    """The first slot as pinned (optimiser.problem.FirstSlot): ``first`` 1 when the battery's
    is (it then ends at ``soc_start``), and the EV's charge there (None: free)."""

    first: int
    soc_start: float
    ev_kwh: float | None


def first_slot(p: Problem, charge_kwh: F64) -> Pin | None:
    """The problem's pinned first slot, clipped into its bounds as the LP's pin is
    (optimiser.model.build); None where the fast paths cannot take it (charge and discharge
    both pinned above 0, or a SoC outside the bounds)."""
    b = p.battery
    assert b is not None
    pin = p.first_slot
    if pin is None:
        return Pin(0, b.soc_kwh, None)
    ev_kwh = dict(pin.ev_charge_kwh).get(p.evs[0].id) if p.evs else None
    if pin.battery_charge_kwh is None and pin.battery_discharge_kwh is None:
        return Pin(0, b.soc_kwh, ev_kwh)
    c = min(max(pin.battery_charge_kwh or 0.0, 0.0), float(charge_kwh[0]))
    d = min(max(pin.battery_discharge_kwh or 0.0, 0.0), b.discharge_kw * p.slot_hours)
    if c > 1e-12 and d > 1e-12:
        return None
    soc = b.soc_kwh + b.charge_efficiency * c - d / b.discharge_efficiency
    if not b.min_soc_kwh - 1e-9 <= soc <= b.max_soc + 1e-9:
        return None
    return Pin(1, min(max(soc, b.min_soc_kwh), b.max_soc), ev_kwh)


def _battery_ac(soc: F64, soc0: float, eta_c: float, eta_d: float) -> F64:
    """AC kWh into (+) or out of (-) the battery per slot, from the SoC path."""
    d = np.diff(soc, prepend=soc0)
    return np.where(d > 0, d / eta_c, d * eta_d)


def _ev_rules_hold(p: Problem, charge: F64) -> bool:
    ev = p.evs[0]
    on = charge > 1e-6
    m = ev.min_charge_kw * p.slot_hours
    if m > 0 and np.any(on & (charge < m - 1e-6)):
        return False
    if ev.max_charge_slots_per_day is not None:
        periods = midday_periods(p)
        for per in np.unique(periods[on]):
            if int(np.sum(on & (periods == per))) > ev.max_charge_slots_per_day:
                return False
    return True


@njit(cache=True, nogil=True)
def _run(
    lam: float, tie: F64, priced: F64, pv: F64, load: F64, exp_cap: F64, imp_cap: F64, chg_cap: F64,
    export_p: F64, import_p: F64, ev_kwh: F64, dis_kwh: float, eta_c: float, eta_d: float,
    lo: float, hi: float, end_lo: float, end_value: float, soc0: float, first: int,
    soc_start: float, soc: F64, charge: F64,
) -> float:  # fmt: skip
    """One Lagrangian solve at EV price ``lam``: fills the SoC path and the EV charge; returns
    the optimal value (NaN: infeasible or a non-convex slot). ``first`` 1: the battery's first
    slot is pinned, ending at ``soc_start``."""
    r_len, r_slope, r_left, r_vl, brk, tags, ok = _slot_costs(
        pv, load, exp_cap, imp_cap, chg_cap, export_p, import_p, ev_kwh, lam * priced - tie,
        dis_kwh, eta_c, eta_d,
    )  # fmt: skip
    if not ok:
        return np.nan
    if first == 1:
        soc[0] = soc_start
    start = soc_start if first == 1 else soc0
    value = _value_dp(r_len, r_slope, r_left, r_vl, first, lo, hi, end_lo, end_value, start, soc)
    if np.isnan(value):
        return value
    prev = soc0
    for t in range(soc.size):
        d = soc[t] - prev
        prev = soc[t]
        y = load[t] - pv[t] + (d / eta_c if d > 0 else d * eta_d)
        charge[t] = 0.0
        for q in range(5):
            if tags[t, q] == 4:
                seg = brk[t, q + 1] - brk[t, q]
                charge[t] = ev_kwh[t] - min(max(y - brk[t, q], 0.0), seg)
    return value


@njit(cache=True, nogil=True)
def _bisect(
    tie: F64, priced: F64, pv: F64, load: F64, exp_cap: F64, imp_cap: F64, chg_cap: F64,
    export_p: F64, import_p: F64, ev_kwh: F64, dis_kwh: float, eta_c: float, eta_d: float,
    lo: float, hi: float, end_lo: float, end_value: float, soc0: float, first: int,
    soc_start: float, need: float, penalty: float, bracket: float, soc_a: F64, c_a: F64,
    soc_b: F64, c_b: F64, steps: int, guess: float, width: float, local_steps: int,
) -> tuple[float, float]:  # fmt: skip
    """The EV target's price by bisection. Fills plan a (below the target) and plan b (at or
    above it); returns (theta, price): theta*a + (1 - theta)*b meets the target exactly.
    theta NaN: infeasible."""
    args = (tie, priced, pv, load, exp_cap, imp_cap, chg_cap, export_p, import_p, ev_kwh, dis_kwh,
            eta_c, eta_d, lo, hi, end_lo, end_value, soc0, first, soc_start)  # fmt: skip
    if need <= 1e-12:
        v = _run(0.0, *args, soc_b, c_b)
        return (0.0 if not np.isnan(v) else np.nan), 0.0
    if guess >= 0.0:
        # A price known to be near (a similar problem's): bracket it closely, so that
        # local_steps halvings reach what steps would from the full range.
        g_lo = max(guess - width, 0.0)
        v = _run(g_lo, *args, soc_a, c_a)
        if np.isnan(v):
            return np.nan, 0.0
        if g_lo > 0.0 and (c_a * priced).sum() < need - 1e-9:
            v = _run(guess + width, *args, soc_b, c_b)
            if np.isnan(v):
                return np.nan, 0.0
            if (c_b * priced).sum() >= need:
                return _narrow(g_lo, guess + width, local_steps, need, priced, args, soc_a, c_a,
                               soc_b, c_b)  # fmt: skip
    hi_lam = min(bracket, penalty)
    v = _run(hi_lam, *args, soc_b, c_b)
    if np.isnan(v):
        return np.nan, 0.0
    if (c_b * priced).sum() < need - 1e-9:
        v = _run(penalty, *args, soc_b, c_b)  # the target is dear or out of reach
        if np.isnan(v):
            return np.nan, 0.0
        if (c_b * priced).sum() <= need + 1e-9:
            return 0.0, penalty
        hi_lam = penalty
    lo_lam = 0.0
    v = _run(lo_lam, *args, soc_a, c_a)
    if np.isnan(v):
        return np.nan, 0.0
    if (c_a * priced).sum() >= need - 1e-9:
        soc_b[:] = soc_a
        c_b[:] = c_a
        return 0.0, 0.0
    return _narrow(lo_lam, hi_lam, steps, need, priced, args, soc_a, c_a, soc_b, c_b)


@njit(cache=True, nogil=True)
def _narrow(
    lo_lam: float, hi_lam: float, steps: int, need: float, priced: F64, args: tuple[Any, ...],
    soc_a: F64, c_a: F64, soc_b: F64, c_b: F64,
) -> tuple[float, float]:  # fmt: skip
    """Bisection between plan a (at lo_lam, below the target) and plan b (at hi_lam, at or
    above it); returns (theta, price) as :func:`_bisect`."""
    soc_m = np.empty(soc_a.size)
    c_m = np.empty(soc_a.size)
    for _ in range(steps):
        mid = 0.5 * (lo_lam + hi_lam)
        v = _run(mid, *args, soc_m, c_m)  # type: ignore[call-arg]  # (args: _run's 18 inputs)
        if np.isnan(v):
            return np.nan, 0.0
        total = (c_m * priced).sum()
        if total >= need:
            hi_lam = mid
            soc_b[:] = soc_m
            c_b[:] = c_m
            if total <= need + 1e-9:
                break
        else:
            lo_lam = mid
            soc_a[:] = soc_m
            c_a[:] = c_m
    a = (c_a * priced).sum()
    z = (c_b * priced).sum()
    theta = (z - need) / (z - a) if z - a > 1e-12 else 0.0
    return theta, hi_lam
