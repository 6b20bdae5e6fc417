"""Solving the sparse model with HiGHS (highspy), LP first and MIP only where needed.

The LP relaxation is solved first. Binaries are added only for what the LP solution breaks:
simultaneous import and export, simultaneous charge and discharge (both only pay when prices
are negative or export beats import), an EV over its per-day slot cap, or an EV below its
minimum non-zero power. An LP solution that breaks nothing is optimal for the MIP too.
:class:`WarmHighs` keeps one live HiGHS LP and sends only the costs and bounds that changed.
"""

from __future__ import annotations

from collections.abc import Hashable

import highspy
import numpy as np

from optimiser.assemble import assemble
from optimiser.model import (
    Binaries,
    LpModel,
    build,
    matrix_key,
    midday_periods,
)
from optimiser.problem import Problem
from optimiser.schedule import Schedule

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
    assert m.a is not None, "a model built with matrix=False cannot be passed"
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


def _run(h: highspy.Highs, limit_s: float = TIME_LIMIT_S) -> tuple[np.ndarray, float, str]:
    # HiGHS compares time_limit with the object's total run clock, which never resets between
    # runs (issue 15: a reused object failed every solve after 988 warm 8-slot solves with a
    # 0.2 s limit, after ~7,000 with 3 s). The limit is therefore moved on before every run.
    h.setOptionValue("time_limit", h.getRunTime() + limit_s)
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
    """The schedule from a solution. Every column is >= 0, but HiGHS may return -5e-7 within its
    feasibility tolerance; on the 10,000 p/kWh unserved column that moved the objective by
    0.005 p (hypothesis found it against CBC), so values are clipped at 0 and the objective is
    recomputed from them (``objective`` is HiGHS's, kept for the signature)."""
    del objective
    lay, n = m.layout, p.n
    x = np.maximum(x, 0.0)
    seg = lambda k: x[k : k + n].copy() if k >= 0 else np.zeros(n)  # noqa: E731
    return assemble(
        p, imp=seg(lay.imp), exp=seg(lay.exp), curt=seg(lay.curt), unserved=seg(lay.unserved),
        bc=seg(lay.bc), bd=seg(lay.bd), soc=seg(lay.soc),
        ev_charge=[seg(c) for c in lay.ev_c], ev_soc=[seg(s) for s in lay.ev_soc],
        shortfall=[float(x[k]) for k in lay.ev_short], solver=solver, mip=m.binaries.any,
    )  # fmt: skip


def net_equal_prices(p: Problem, m: LpModel, x: np.ndarray) -> np.ndarray:
    """Where import costs exactly what export earns, an LP optimum may import and export in one
    slot (a tie, not a gain: 1,172 of 2,000 IO Flux sites went to the MIP for it, issue 15).
    Netting the two leaves the objective and the balance unchanged and breaks no bound."""
    lay, n = m.layout, p.n
    imp_cost = p.import_price_p
    if p.carbon_g_per_kwh is not None and p.carbon_weight_p_per_kg:
        imp_cost = imp_cost + p.carbon_weight_p_per_kg * p.carbon_g_per_kwh / 1000.0
    imp, exp = x[lay.imp : lay.imp + n], x[lay.exp : lay.exp + n]
    both = (imp > EPS) & (exp > EPS) & (imp_cost == p.export_price_p)
    if not both.any():
        return x
    x = x.copy()
    d = np.minimum(imp, exp) * both
    x[lay.imp : lay.imp + n] -= d
    x[lay.exp : lay.exp + n] -= d
    return x


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
    p: Problem,
    h: highspy.Highs | None = None,
    mip_abs_gap_p: float = 0.0,
    time_limit_s: float = TIME_LIMIT_S,
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
        x, obj, quality = _run(h, time_limit_s)
        if not bins.any:
            x = net_equal_prices(p, m, x)
        more = needed_binaries(p, m, x, bins)
        if more == bins or attempt == 5 or quality != "optimal":
            return _with_quality(to_schedule(p, m, x, obj, "highs"), quality)
        bins = _union(more, data_binaries(p)) if attempt == 0 else more
    raise AssertionError("unreachable")


class WarmHighs:
    """Re-solves problems on one live HiGHS LP: while the matrix stays the same
    (:func:`optimiser.model.matrix_key`), only the costs and bounds that changed are sent and
    the matrix is never rebuilt. A problem whose LP breaks a disjunction goes to the MIP path
    (:func:`solve_highs`), which builds its own model."""

    def __init__(self, mip_abs_gap_p: float = 0.0, time_limit_s: float = TIME_LIMIT_S) -> None:
        self.mip_abs_gap_p = mip_abs_gap_p
        self.time_limit_s = time_limit_s
        self._live: highspy.Highs | None = None  # made on first use: most sites never need it
        self._key: Hashable | None = None
        self._model: LpModel | None = None
        self.warm_solves = 0
        self.cold_solves = 0
        self.mip_solves = 0

    @property
    def _h(self) -> highspy.Highs:
        if self._live is None:
            self._live = _new_highs()
        return self._live

    def solve(self, p: Problem) -> Schedule:
        key = matrix_key(p)
        old = self._model
        if key != self._key or old is None:
            m = build(p)
            _pass(self._h, m)
            self._key = key
            self.cold_solves += 1
        else:
            m = build(p, matrix=False)
            self._send_changes(old, m)
            self.warm_solves += 1
        self._model = m
        x, obj, _ = _run(self._h, self.time_limit_s)
        x = net_equal_prices(p, m, x)
        if needed_binaries(p, m, x, Binaries()).any:
            self.mip_solves += 1
            return solve_highs(p, mip_abs_gap_p=self.mip_abs_gap_p, time_limit_s=self.time_limit_s)
        return to_schedule(p, m, x, obj, "highs")

    def _send_changes(self, old: LpModel, m: LpModel) -> None:
        h = self._h
        c = np.flatnonzero(old.cost != m.cost).astype(np.int32)
        if c.size:
            h.changeColsCost(c.size, c, m.cost[c])
        b = np.flatnonzero((old.col_lower != m.col_lower) | (old.col_upper != m.col_upper))
        if b.size:
            b = b.astype(np.int32)
            h.changeColsBounds(b.size, b, m.col_lower[b], m.col_upper[b])
        r = np.flatnonzero((old.row_lower != m.row_lower) | (old.row_upper != m.row_upper))
        if r.size:
            r = r.astype(np.int32)
            h.changeRowsBounds(r.size, r, m.row_lower[r], m.row_upper[r])  # type: ignore[attr-defined]
