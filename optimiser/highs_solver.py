"""Solving the sparse model with HiGHS (highspy), LP first and MIP only where needed.

The LP relaxation is solved first. Binaries are added only for what the LP solution breaks:
simultaneous import and export, simultaneous charge and discharge (both only pay when prices
are negative or export beats import), an EV over its per-day slot cap, or an EV below its
minimum non-zero power. An LP solution that breaks nothing is optimal for the MIP too.
:class:`HighsPlanner` keeps one HiGHS instance per problem shape and only changes costs and
bounds between solves of that shape.
"""

from __future__ import annotations

from collections.abc import Hashable

import highspy
import numpy as np

from optimiser.model import (
    CURTAIL_P,
    SHORTFALL_P,
    TIE_BREAK_P,
    UNSERVED_P,
    WEAR_P,
    Binaries,
    LpModel,
    build,
    midday_periods,
)
from optimiser.problem import Problem
from optimiser.schedule import Costs, EvPlan, Schedule, dispatch_intervals

EPS = 1e-6
TIME_LIMIT_S = 3.0


def _new_highs() -> highspy.Highs:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 1e-7)
    h.setOptionValue("threads", 1)
    # A daemon must never wait on one hard MIP: past this, the best plan found so far is used
    # and reported as "feasible".
    h.setOptionValue("time_limit", TIME_LIMIT_S)
    # Our MIPs are small (tens of binaries) and their LP bounds tight: the RINS/RENS sub-MIP
    # heuristics cost more than they find. Off, an IO Go night with grid arbitrage solves in
    # 81 ms instead of 176 ms, still proven optimal (bench/optimiser.py, BENCHMARKS.md).
    h.setOptionValue("mip_heuristic_run_rins", False)
    h.setOptionValue("mip_heuristic_run_rens", False)
    return h


def _pass(h: highspy.Highs, m: LpModel) -> None:
    lp = highspy.HighsLp()
    lp.num_col_ = m.cost.size
    lp.num_row_ = m.row_lower.size
    lp.col_cost_ = m.cost
    lp.col_lower_ = m.col_lower
    lp.col_upper_ = m.col_upper
    lp.row_lower_ = m.row_lower
    lp.row_upper_ = m.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = m.a.indptr
    lp.a_matrix_.index_ = m.a.indices
    lp.a_matrix_.value_ = m.a.data
    if m.binaries.any:
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if v else highspy.HighsVarType.kContinuous
            for v in m.integrality
        ]
    status = h.passModel(lp)
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS refused the model")


def _run(h: highspy.Highs) -> tuple[np.ndarray, float, str]:
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    if status == highspy.HighsModelStatus.kOptimal:
        quality = "optimal"
    elif status == highspy.HighsModelStatus.kTimeLimit and info.primal_solution_status == 2:
        quality = "feasible"
    else:
        raise RuntimeError(f"HiGHS: {h.modelStatusToString(status)}")
    sol = np.asarray(h.getSolution().col_value, dtype=np.float64)
    return sol, float(info.objective_function_value), quality


def needed_binaries(p: Problem, m: LpModel, x: np.ndarray, have: Binaries) -> Binaries:
    lay, n = m.layout, p.n
    imp, exp = x[lay.imp : lay.imp + n], x[lay.exp : lay.exp + n]
    grid = set(have.grid_slots) | set(np.flatnonzero((imp > EPS) & (exp > EPS)).tolist())
    bat = set(have.battery_slots)
    if p.battery is not None:
        bc, bd = x[lay.bc : lay.bc + n], x[lay.bd : lay.bd + n]
        bat |= set(np.flatnonzero((bc > EPS) & (bd > EPS)).tolist())
    evs = set(have.ev_on)
    for i, ev in enumerate(p.evs):
        c = x[lay.ev_c[i] : lay.ev_c[i] + n]
        on = c > EPS
        if ev.min_charge_kw > 0 and np.any(on & (c < ev.min_charge_kw * p.slot_hours - EPS)):
            evs.add(i)
        if ev.max_charge_slots_per_day is not None:
            periods = midday_periods(p)
            for per in np.unique(periods[on]):
                if int(np.sum(on & (periods == per))) > ev.max_charge_slots_per_day:
                    evs.add(i)
                    break
    return Binaries(tuple(sorted(grid)), tuple(sorted(bat)), tuple(sorted(evs)))


def to_schedule(p: Problem, m: LpModel, x: np.ndarray, objective: float, solver: str) -> Schedule:
    lay, n = m.layout, p.n
    seg = lambda k: x[k : k + n].copy() if k >= 0 else np.zeros(n)  # noqa: E731
    imp, exp = seg(lay.imp), seg(lay.exp)
    curt, unserved = seg(lay.curt), seg(lay.unserved)
    bc, bd, soc = seg(lay.bc), seg(lay.bd), seg(lay.soc)
    if p.battery is None:
        soc = np.zeros(n)
    evs = []
    shortfall_pen = 0.0
    tie = 0.0
    for i, ev in enumerate(p.evs):
        c = seg(lay.ev_c[i])
        short = float(x[lay.ev_short[i]])
        shortfall_pen += SHORTFALL_P * short
        tie += float(np.dot(TIE_BREAK_P * (np.arange(n) + 1), c))
        evs.append(EvPlan(ev.id, c, seg(lay.ev_soc[i]), short,
                          dispatch_intervals(p.start, p.slot_minutes, c)))  # fmt: skip
    carbon = 0.0
    if p.carbon_g_per_kwh is not None and p.carbon_weight_p_per_kg:
        carbon = float(np.dot(p.carbon_weight_p_per_kg * p.carbon_g_per_kwh / 1000.0, imp))
    terminal = p.battery.value_p_per_kwh * float(soc[-1]) if p.battery is not None else 0.0
    costs = Costs(
        import_p=float(np.dot(p.import_price_p, imp)),
        export_p=float(np.dot(p.export_price_p, exp)),
        carbon_p=carbon,
        shortfall_penalty_p=shortfall_pen,
        unserved_penalty_p=UNSERVED_P * float(unserved.sum()),
        terminal_value_p=terminal,
        small_terms_p=tie + WEAR_P * float(bd.sum()) + CURTAIL_P * float(curt.sum()),
    )
    notes = []
    if unserved.sum() > EPS:
        notes.append(f"{unserved.sum():.3f} kWh of load exceeds what the site limits can serve")
    status = "feasible" if unserved.sum() > EPS else "optimal"
    return Schedule(
        status=status, objective_p=objective, costs=costs, start=p.start,
        slot_minutes=p.slot_minutes, grid_import_kwh=imp, grid_export_kwh=exp,
        battery_charge_kwh=bc, battery_discharge_kwh=bd, battery_soc_kwh=soc,
        pv_curtailed_kwh=curt, unserved_kwh=unserved, evs=tuple(evs), solver=solver,
        mip=m.binaries.any, notes=tuple(notes),
    )  # fmt: skip


def data_binaries(p: Problem) -> Binaries:
    """Binaries the data says may bind: export worth at least import, negative import prices,
    an EV slot cap or minimum power."""
    grid = np.flatnonzero(p.export_price_p >= p.import_price_p).tolist()
    bat = np.flatnonzero(p.import_price_p < 0).tolist() if p.battery is not None else []
    evs = [
        i
        for i, e in enumerate(p.evs)
        if e.max_charge_slots_per_day is not None or e.min_charge_kw > 0
    ]
    return Binaries(tuple(grid), tuple(bat), tuple(evs))


def _with_quality(s: Schedule, quality: str) -> Schedule:
    if quality == "optimal" or s.status != "optimal":
        return s
    import dataclasses

    return dataclasses.replace(s, status=quality, notes=(*s.notes, "time limit: best plan found"))


def _union(a: Binaries, b: Binaries) -> Binaries:
    return Binaries(
        tuple(sorted(set(a.grid_slots) | set(b.grid_slots))),
        tuple(sorted(set(a.battery_slots) | set(b.battery_slots))),
        tuple(sorted(set(a.ev_on) | set(b.ev_on))),
    )


def solve_highs(
    p: Problem, h: highspy.Highs | None = None, mip_abs_gap_p: float = 0.0
) -> Schedule:
    """LP first; if it breaks a disjunction, add the binaries the data says may bind (and any
    the LP broke) and solve the MIP; repeat until nothing new breaks."""
    h = h or _new_highs()
    if mip_abs_gap_p > 0:
        h.setOptionValue("mip_abs_gap", mip_abs_gap_p)
    bins = Binaries()
    for attempt in range(6):
        if attempt == 5:  # never seen: every disjunction as a binary
            every = tuple(range(p.n))
            bins = Binaries(every, every if p.battery is not None else (), tuple(range(len(p.evs))))
        m = build(p, bins)
        _pass(h, m)
        x, obj, quality = _run(h)
        more = needed_binaries(p, m, x, bins)
        if more == bins or attempt == 5 or quality != "optimal":
            return _with_quality(to_schedule(p, m, x, obj, "highs"), quality)
        bins = _union(more, data_binaries(p)) if attempt == 0 else more
    raise AssertionError("unreachable")


class HighsPlanner:
    """Re-solves problems of one shape on a live HiGHS model, changing costs and bounds only.

    The shape is (slots, battery or not, EV count, their flags). A problem that needed
    binaries is solved afresh (and the live model is not reused for it).
    """

    def __init__(self, mip_abs_gap_p: float = 0.0) -> None:
        """``mip_abs_gap_p``: where binaries are needed, stop once the plan is proven within
        this many pence of the best (0: prove it optimal)."""
        self.mip_abs_gap_p = mip_abs_gap_p
        self._h = _new_highs()
        self._shape: Hashable | None = None
        self._model: LpModel | None = None
        self.warm_solves = 0
        self.cold_solves = 0

    @staticmethod
    def shape(p: Problem) -> Hashable:
        b = p.battery
        return (
            p.n, p.slot_minutes, b is not None, b is not None and b.grid_charge,
            b is not None and b.grid_export,
            tuple(
                (p.ready_index(e), e.max_charge_slots_per_day, e.min_charge_kw > 0) for e in p.evs
            ),
        )  # fmt: skip

    def solve(self, p: Problem) -> Schedule:
        shape = self.shape(p)
        m = build(p)
        if shape != self._shape or self._model is None:
            _pass(self._h, m)
            self._shape, self._model = shape, m
            self.cold_solves += 1
        else:
            # Same structure, new numbers. Matrix coefficients that depend on efficiencies
            # are part of the shape only through the build: re-pass if they changed.
            if not np.array_equal(m.a.data, self._model.a.data):
                _pass(self._h, m)
                self.cold_solves += 1
            else:
                idx = np.arange(m.cost.size, dtype=np.int32)
                self._h.changeColsCost(idx.size, idx, m.cost)
                self._h.changeColsBounds(idx.size, idx, m.col_lower, m.col_upper)
                ridx = np.arange(m.row_lower.size, dtype=np.int32)
                self._h.changeRowsBounds(ridx.size, ridx, m.row_lower, m.row_upper)  # type: ignore[attr-defined]
                self.warm_solves += 1
            self._model = m
        x, obj, _ = _run(self._h)
        if needed_binaries(p, m, x, Binaries()).any:
            self._shape = None  # the live model is LP-only; the MIP path builds its own
            return solve_highs(p, mip_abs_gap_p=self.mip_abs_gap_p)
        return to_schedule(p, m, x, obj, "highs")
