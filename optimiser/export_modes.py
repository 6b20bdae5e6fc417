"""Battery + one EV (+ PV) where export pays more than import in some slots (IO Go: 15 p export
over a 7 p night), the MILP's shape: there a slot either imports or exports, a binary.

For a fixed choice per such slot (import mode: export capped at 0; export mode: import capped
at 0) every slot cost is convex again and :func:`optimiser.joint_dp.solve_convex` gives that
choice's exact optimum (the MILP's own choice so solved gives the MILP's optimum:
tests/optimiser/test_export_modes.py). The MILP is the best of these convex plans; this path
searches the choices:

1. a dynamic program over a SoC grid with the EV priced per kWh (a Lagrange price on its
   target), each slot's exact cost of a SoC change being the cheaper mode's: it sees the
   non-convexity and the order in which the battery must charge before it can export; run at
   the EV price of each choice's exact plan until a choice repeats;
2. the same DP with the number of export slots (where the EV could charge) as a second state,
   the EV aside: the battery's best choice for each number, ranked with the EV's cost of losing
   that many night slots. The Lagrangian alone misses these: the EV's energy jumps where its
   price crosses a slot's (7 p, 15 p), and the MILP exports in exactly as many slots as the EV
   can spare (a Lagrangian-only search missed max(0.25 %, 0.5 p) on 5 of 40 IO Go instances);
3. a local search from the best until no neighbour is better: each choice slot flipped, each
   export slot moved to any import-mode slot of the window, the whole pattern shifted.

Every candidate's exact value (continuous SoC, the EV's target met) comes from one compiled
call, and the cheapest is the plan. Most neighbours need less: each choice's problem is convex,
so its Lagrangian at the best plan's EV price is a lower bound on its value (one DP run instead
of a bisection over the price), and a neighbour whose bound is no better than the best so far
is not evaluated (about 3 exact values per plan instead of 40).

It is not proven optimal: a MILP-feasible plan whose distance to the MILP's optimum was measured
against HiGHS (BENCHMARKS.md, bench/export_modes_gap.py), and the schedule's notes say so.
:func:`applies` keeps the path to the shape it was measured on.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from optimiser.battery_dp import (
    MIN_ROUND_TRIP,
    _slot_costs,
    _split,
    effective_import_price,
    grid_caps,
)
from optimiser.joint_dp import (
    BISECT_STEPS,
    GUESS_WIDTH_P,
    PINNED_EV_P,
    JointPlan,
    Pin,
    _bisect,
    _run,
    first_slot,
    solve_convex,
)
from optimiser.model import CURTAIL_P, SHORTFALL_P, TIE_BREAK_P, UNSERVED_P, WEAR_P
from optimiser.problem import Problem
from optimiser.schedule import Schedule

F64 = npt.NDArray[np.float64]
# The SoC grids of the mode choice (kWh): 0.1 for the Lagrangian DP, 0.05 for the DP by number
# of exports; finer for a battery that moves less than 15 steps a slot (a 0.1 kWh grid on a
# 0.5 kWh/slot charger missed the MILP by 1 p on random instances; rate / 15 found it), and
# coarser where a grid would have more than MAX_STATES states. Measured on 1,000 IO Go-like
# instances, a 0.1 kWh grid for the count DP missed max(0.25 %, 0.5 p) on 4, 0.05 on none.
GRID_KWH = 0.1
COUNT_KWH = 0.05
MAX_STATES = 400
K_MAX = 16  # export slots counted by the count DP (IO Go's night has 12 choice slots)
COUNT_POLISH = 3  # the count DP's best few choices, by estimated cost, solved exactly
# Shifts of the whole export pattern. (Moves of one export slot by up to +-3, before any move
# in the window was tried: hypothesis and the hand run found sites whose best choice was one
# export slot 3 or 4 slots from the DPs', missed by 1.12x and 1.46x the allowed gap.)
SHIFTS = np.array([-3, -2, -1, 1, 2, 3])
# The EV price's bisection for ranking choices: 38 p / 2^18, under 0.01 p on 60 kWh (the plan
# itself is solved to BISECT_STEPS).
CANDIDATE_STEPS = 18
CANDIDATE_GUESS_STEPS = 8  # within +-GUESS_WIDTH_P of a guess: 0.04 p / 2^8
MAX_ROUNDS = 4  # Lagrangian rounds (a choice usually repeats by the second or third)
# Rounds of local search (it stops at a local optimum; two rounds with flips only after the
# moves missed a random-shape site by 1.85x the allowed gap: its best was found in the last
# round and one flip from it was the MILP's choice).
MOVE_ROUNDS = 8


def applies(p: Problem) -> bool:
    """The shape this path was measured on (a tariff's cheap window under a flat export, as
    IO Go's night): a battery that may charge from and export to the grid and one EV with no
    slot cap or minimum power; the slots where export pays more than import form one window
    with one import and one export price, and the EV is plugged in through it before its
    ready-by. Random shapes outside it (scattered windows, the EV away for some slots, PV-only
    charging) missed the MILP's allowed gap on about 3 in 1,000 (BENCHMARKS.md): HiGHS."""
    b = p.battery
    if b is None or len(p.evs) != 1:
        return False
    if not (b.grid_charge and b.grid_export):
        return False
    if first_slot(p, grid_caps(p)[2]) is None:
        return False
    imp = effective_import_price(p)
    ev = p.evs[0]
    w = p.export_price_p > imp
    at = np.flatnonzero(w)
    if at.size == 0 or at[-1] - at[0] + 1 != at.size:
        return False  # none, or not one window
    if np.ptp(imp[at]) > 0 or np.ptp(p.export_price_p[at]) > 0:
        return False
    before = np.arange(p.n) < p.ready_index(ev)
    if np.any(w & before & ~np.asarray(ev.plugged_in, dtype=bool)):
        return False
    return bool(
        np.all(p.export_price_p >= 0) and np.all(imp >= 0)
        and np.all(imp < UNSERVED_P)
        and b.charge_efficiency * b.discharge_efficiency >= MIN_ROUND_TRIP
        and b.value_p_per_kwh >= 0 and b.charge_kw > 0 and b.discharge_kw > 0
        and p.evs[0].min_charge_kw == 0 and p.evs[0].max_charge_slots_per_day is None
    )  # fmt: skip


class Modes:
    """The per-slot grid caps and prices of both modes, and the exact solve of a choice."""

    def __init__(self, p: Problem) -> None:
        self.p = p
        imp = effective_import_price(p).astype(np.float64)
        self.export_kwh, self.import_kwh, self.charge_kwh = grid_caps(p)
        self.w = p.export_price_p > imp  # the slots with a choice
        self.imp, self.exp = imp, p.export_price_p.astype(np.float64)
        b = p.battery
        assert b is not None
        ev = p.evs[0]
        n, h = p.n, p.slot_hours
        k = p.ready_index(ev)
        target = min(ev.target_soc_kwh, ev.capacity_kwh)
        self.need = (target - ev.soc_kwh) / ev.efficiency if k >= 1 and target > ev.soc_kwh else 0.0
        self.ev_kwh = np.where(np.asarray(ev.plugged_in, dtype=bool), ev.max_charge_kw * h, 0.0)
        self.priced = (np.arange(n) < k).astype(np.float64)
        self.tie = (TIE_BREAK_P * (np.arange(n) + 1)).astype(np.float64)
        self.real_tie = self.tie.copy()  # the objective's (self.tie[0] prices a pinned EV)
        pin = first_slot(p, self.charge_kwh)
        self.pin = Pin(0, b.soc_kwh, None) if pin is None else pin  # None: applies() said no
        if self.pin.ev_kwh is not None:  # as joint_dp.solve_convex does
            self.ev_kwh[0] = min(max(self.pin.ev_kwh, 0.0), self.ev_kwh[0])
            if self.priced[0] > 0 and self.need > 0:
                self.need = max(self.need - self.ev_kwh[0], 0.0)
            self.priced[0], self.tie[0] = 0.0, -PINNED_EV_P
        top = max(float(imp.max()), float(self.exp.max()))
        self.bracket = top / (b.charge_efficiency * b.discharge_efficiency * ev.efficiency) + 1.0
        self.counted = self.w & (self.ev_kwh > 0) & (self.priced > 0)
        self.bracket = top / (b.charge_efficiency * b.discharge_efficiency * ev.efficiency) + 1.0

    def arrays(self, export_mode: npt.NDArray[np.bool_]) -> tuple[F64, F64, F64, F64]:
        """(export price, import price, export cap, import cap) for a choice: import-mode
        slots cannot export, export-mode slots cannot import (their prices then made equal,
        so each slot's cost is convex)."""
        i_mode = self.w & ~export_mode
        e_mode = self.w & export_mode
        ep = np.where(i_mode, self.imp, self.exp)
        ip = np.where(e_mode, self.exp, self.imp)
        ek = np.where(i_mode, 0.0, self.export_kwh)
        ik = np.where(e_mode, 0.0, self.import_kwh)
        return ep, ip, ek, ik

    def value(self, export_mode: npt.NDArray[np.bool_], guess: float) -> tuple[float, float]:
        """A choice's exact objective (EV price to CANDIDATE_STEPS halvings) and its EV price,
        in one compiled call: ranking choices needs no plan. (inf, -1): infeasible, or the EV
        over its capacity."""
        p = self.p
        b = p.battery
        assert b is not None
        ev = p.evs[0]
        ep, ip, ek, ik = self.arrays(export_mode)
        return _value(
            self.tie, self.priced, p.pv_kwh, p.load_kwh, ek, ik, self.charge_kwh, ep, ip,
            self.ev_kwh, b.discharge_kw * p.slot_hours, b.charge_efficiency,
            b.discharge_efficiency, b.min_soc_kwh, b.max_soc, max(b.min_soc_kwh, b.final_min),
            b.value_p_per_kwh, b.soc_kwh, self.pin.first, self.pin.soc_start, self.need,
            SHORTFALL_P * ev.efficiency, self.bracket, CANDIDATE_STEPS, guess, GUESS_WIDTH_P,
            CANDIDATE_GUESS_STEPS, ev.efficiency, ev.capacity_kwh - ev.soc_kwh, self.real_tie,
        )  # fmt: skip

    def lower(self, export_mode: npt.NDArray[np.bool_], lam: float) -> float:
        """A lower bound on a choice's exact objective: its Lagrangian at EV price ``lam``
        (weak duality: each choice's problem is convex, and any price in [0, the shortfall
        penalty] prices the target no higher than the penalty does). One DP run, where
        :meth:`value` bisects over the price: a candidate whose bound is no better than the
        best plan so far cannot beat it and needs no exact value."""
        p = self.p
        b = p.battery
        assert b is not None
        # Weak duality holds for prices in [0, the shortfall penalty]: clamp into it.
        lam = min(max(lam, 0.0), SHORTFALL_P * p.evs[0].efficiency)
        ep, ip, ek, ik = self.arrays(export_mode)
        pinned_ev = 0.0
        if self.pin.ev_kwh is not None:  # the pinned EV's energy at its real tie-break
            pinned_ev = (PINNED_EV_P + self.real_tie[0]) * self.ev_kwh[0]
        return _lower(
            lam, self.tie, self.priced, p.pv_kwh, p.load_kwh, ek, ik, self.charge_kwh, ep, ip,
            self.ev_kwh, b.discharge_kw * p.slot_hours, b.charge_efficiency,
            b.discharge_efficiency, b.min_soc_kwh, b.max_soc, max(b.min_soc_kwh, b.final_min),
            b.value_p_per_kwh, b.soc_kwh, self.pin.first, self.pin.soc_start,
        ) + lam * self.need + pinned_ev  # fmt: skip

    def exact(
        self, export_mode: npt.NDArray[np.bool_], steps: int = BISECT_STEPS, guess: float = -1.0
    ) -> JointPlan | None:
        ep, ip, ek, ik = self.arrays(export_mode)
        return solve_convex(self.p, ep, ip, ek, ik, self.charge_kwh, steps, guess)

    def sides(self, ev_kwh: F64, ev_slope: F64) -> list[tuple[F64, F64, F64, F64]]:
        """Each slot's reflected cost of a SoC change in import mode and in export mode."""
        p = self.p
        b = p.battery
        assert b is not None
        out = []
        for e_mode in (np.zeros(p.n, dtype=bool), self.w):
            ep, ip, ek, ik = self.arrays(e_mode)
            r_len, r_slope, r_left, r_vl, _, _, _ = _slot_costs(
                p.pv_kwh, p.load_kwh, ek, ik, self.charge_kwh, ep, ip, ev_kwh, ev_slope,
                b.discharge_kw * p.slot_hours, b.charge_efficiency, b.discharge_efficiency,
            )  # fmt: skip
            out.append((r_len, r_slope, r_left, r_vl))
        return out

    def step(self, grid_kwh: float) -> float:
        """The SoC grid: ``grid_kwh``, finer for a slow battery, coarser for a big one."""
        b = self.p.battery
        assert b is not None
        h = self.p.slot_hours
        rate = min(b.charge_kw * b.charge_efficiency, b.discharge_kw / b.discharge_efficiency) * h
        return max(min(grid_kwh, rate / 15), (b.max_soc - b.min_soc_kwh) / MAX_STATES)

    def by_count(self, k_max: int) -> list[tuple[float, int, npt.NDArray[np.bool_]]]:
        """The battery's best choice for each number e of export-mode slots where the EV
        could charge, the EV aside: (its cost, e, choice) per number."""
        p = self.p
        b = p.battery
        assert b is not None
        n = p.n
        sides = self.sides(np.zeros(n), np.zeros(n))
        step = self.step(COUNT_KWH)
        counted = self.counted
        k = min(k_max, int(counted.sum()))
        value = np.empty(k + 1)
        out = np.zeros((k + 1, n), dtype=np.bool_)
        _count_dp(
            *sides[0], *sides[1], self.w, counted, step, b.min_soc_kwh, b.max_soc,
            max(b.min_soc_kwh, b.final_min), b.value_p_per_kwh, b.soc_kwh, k, value, out,
        )  # fmt: skip
        return [(float(value[e]), e, out[e]) for e in range(k + 1) if value[e] < np.inf]

    def ev_cost_by_count(self, k: int) -> F64:
        """An estimate of the EV's cost with e of the choice slots taken by exports, for
        e < k: it fills the cheapest slots before ready-by, the dearest choice slots gone."""
        p = self.p
        ev = p.evs[0]
        h = p.slot_hours
        r = p.ready_index(ev)
        target = min(ev.target_soc_kwh, ev.capacity_kwh)
        need = max(target - ev.soc_kwh, 0.0) / ev.efficiency
        plugged = np.asarray(ev.plugged_in, dtype=bool)[:r]
        room = np.where(plugged, np.minimum(ev.max_charge_kw * h, self.import_kwh[:r]), 0.0)
        price = self.imp[:r]
        w = self.w[:r]
        in_w = np.flatnonzero(w & (room > 0))
        in_w = in_w[np.argsort(-price[in_w], kind="stable")]
        out = np.empty(k)
        for e in range(k):
            rm = room.copy()
            rm[in_w[:e]] = 0.0
            order = np.argsort(price, kind="stable")
            left, cost = need, 0.0
            for t in order:
                take = min(rm[t], left)
                cost += take * price[t]
                left -= take
                if left <= 1e-12:
                    break
            out[e] = cost + left * SHORTFALL_P
        return out

    def choose(self, lam: float) -> npt.NDArray[np.bool_] | None:
        """The mode choice of the SoC-grid DP with the EV at ``lam`` p/kWh."""
        p = self.p
        b = p.battery
        assert b is not None
        n = p.n
        sides = self.sides(self.ev_kwh, lam * self.priced - self.tie)
        step = self.step(GRID_KWH)
        out = np.zeros(n, dtype=np.bool_)
        ok = _grid_dp(
            *sides[0], *sides[1], self.w, step, b.min_soc_kwh, b.max_soc,
            max(b.min_soc_kwh, b.final_min), b.value_p_per_kwh, b.soc_kwh, out,
        )  # fmt: skip
        return out if ok else None


def solve_export_modes(p: Problem) -> Schedule | None:
    """The best plan over the candidate choices, or None (not this shape, infeasible, or an
    EV or load the best choice found leaves short)."""
    if not applies(p):
        return None
    m = Modes(p)
    tried: dict[bytes, tuple[float, float]] = {}  # choice: (objective, EV price)
    best: list[tuple[float, bytes]] = []  # the best so far: (objective, choice)
    best_price = [-1.0]

    def consider(choice: npt.NDArray[np.bool_] | None, prune: bool = True) -> tuple[float, float]:
        if choice is None:
            return np.inf, -1.0
        key = choice.tobytes()
        if key not in tried and prune and best_price[0] >= 0:
            bound = m.lower(choice, best_price[0])
            if bound >= best[0][0] - 1e-9:
                # It cannot beat the best: kept with its bound (finite, as its value would be
                # unless infeasible) and no EV price.
                tried[key] = (bound, -1.0)
        if key not in tried:
            # Most choices' EV price is the best plan's (the same night price): tried first.
            got = tried[key] = m.value(choice, best_price[0])
            if got[0] < np.inf and (not best or got[0] < best[0][0] - 1e-9):
                best[:] = [(got[0], key)]
                best_price[0] = got[1]
        return tried[key]

    # 1. No exports at all (the convex problem without the choice), then the SoC-grid DP at
    # the EV price of each choice's exact plan, until a choice repeats.
    lam = consider(np.zeros(p.n, dtype=np.bool_), prune=False)[1]
    for _ in range(MAX_ROUNDS):
        choice = m.choose(max(lam, 0.0))
        if choice is None or choice.tobytes() in tried:
            break
        lam = consider(choice, prune=False)[1]
        if lam < 0:
            break
    # 2. The Lagrangian skips the choices between two prices (the EV's energy jumps where its
    # price crosses a slot's: 7 p and 15 p on IO Go): the battery's best choice for each
    # number of export slots, the EV aside, ranked with the EV's cost of losing those slots;
    # the best few, and those one export from the best so far.
    ranked = m.by_count(K_MAX)
    ev_cost = m.ev_cost_by_count(len(ranked) + 1)
    ranked.sort(key=lambda r: r[0] + ev_cost[r[1]])
    for _, _, choice in ranked[:COUNT_POLISH]:
        consider(choice)
    if not best:
        return None
    e_best = int((np.frombuffer(best[0][1], dtype=np.bool_) & m.counted).sum())
    for _, e, choice in ranked:
        if abs(e - e_best) <= 1:
            consider(choice)
    # 3. Local search from the best until no neighbour is better (at most MOVE_ROUNDS rounds):
    # each choice slot flipped, each export slot moved to any import-mode slot of the window,
    # the whole pattern shifted. Most neighbours cost one DP run (their Lagrangian bound at the
    # best's EV price already says they cannot win: Modes.lower).
    choice_slots = np.flatnonzero(m.w)
    for _ in range(MOVE_ROUNDS):
        start = best[0]
        cur = np.frombuffer(start[1], dtype=np.bool_)
        for t in choice_slots:
            choice = cur.copy()
            choice[t] = not choice[t]
            consider(choice)
        for t in np.flatnonzero(cur):
            for u in np.flatnonzero(m.w & ~cur):
                choice = cur.copy()
                choice[t], choice[u] = False, True
                consider(choice)
        # The whole pattern moved (the battery's rhythm of charge and export, shifted).
        for s in SHIFTS:
            moved = np.zeros(p.n, dtype=np.bool_)
            at = np.flatnonzero(cur) + s
            if at.size and at.min() >= 0 and at.max() < p.n and m.w[at].all():
                moved[at] = True
                consider(moved)
        if best[0] is start:
            break
    plan = m.exact(np.frombuffer(best[0][1], dtype=np.bool_))  # the EV's price to 1e-9 p
    if plan is None or plan.shortfall > 1e-6 or plan.unserved.sum() > 1e-6:
        # A choice can cut the EV or the load off the grid; where the best one found still
        # leaves a shortfall, the MILP may not (1,000 p/kWh dwarfs the allowed gap): HiGHS.
        return None
    return plan.schedule(p, "export-modes", notes=(NOTE,))


NOTE = (
    "export-modes: the import-or-export choice per slot searched by SoC-grid DPs and a local "
    "search, each choice solved exactly; not proven optimal: measured within max(0.25 %, 0.5 p) "
    "of the MILP optimum on all of 6,513 random sites, worst 0.22 of that (BENCHMARKS.md)"
)


@njit(cache=True, nogil=True)
def _cost_at(r_len: F64, r_slope: F64, r_left: float, r_vl: float, x: float) -> float:
    """g(x) for one slot's reflected cost (inf outside its domain)."""
    if x < r_left - 1e-12:
        return np.inf
    v = r_vl
    pos = r_left
    for q in range(r_len.size):
        seg = r_len[q]
        if x <= pos + seg:
            return v + r_slope[q] * max(x - pos, 0.0)
        v += r_slope[q] * seg
        pos += seg
    return np.inf if x > pos + 1e-12 else v


@njit(cache=True, nogil=True)
def _grid_dp(
    a_len: F64, a_slope: F64, a_left: F64, a_vl: F64, b_len: F64, b_slope: F64, b_left: F64,
    b_vl: F64, w: npt.NDArray[np.bool_], step: float, lo: float, hi: float, end_lo: float,
    end_value: float, soc0: float, out: npt.NDArray[np.bool_],
) -> bool:  # fmt: skip
    """SoC on the grid soc0 + i*step within [lo, hi]; per slot the cheaper mode's exact cost
    of each grid change (a: import mode, b: export mode, where ``w``). Writes the chosen
    modes into ``out``; False if no grid path is feasible."""
    n = a_len.shape[0]
    i_lo = -int(np.floor((soc0 - lo) / step + 1e-9))
    i_hi = int(np.floor((hi - soc0) / step + 1e-9))
    s_n = i_hi - i_lo + 1
    # Reachable changes per slot: the union of both modes' domains.
    j_min, j_max = _change_range(a_len, a_left, b_len, b_left, w, step)
    nj = j_max - j_min + 1
    cost = np.empty((n, nj))
    mode = np.zeros((n, nj), dtype=np.bool_)
    for t in range(n):
        for jj in range(nj):
            x = -(j_min + jj) * step  # g(x) = f(-x): x is minus the SoC change
            ca = _cost_at(a_len[t], a_slope[t], a_left[t], a_vl[t], x)
            if w[t]:
                cb = _cost_at(b_len[t], b_slope[t], b_left[t], b_vl[t], x)
                if cb < ca:
                    ca = cb
                    mode[t, jj] = True
            cost[t, jj] = ca
    v = np.empty(s_n)
    for i in range(s_n):
        s = soc0 + (i_lo + i) * step
        v[i] = -end_value * s if s >= end_lo - 1e-9 else np.inf
    pick = np.empty((n, s_n), dtype=np.int64)
    nv = np.empty(s_n)
    for t in range(n - 1, -1, -1):
        for i in range(s_n):
            best = np.inf
            arg = -1
            for jj in range(nj):
                c = cost[t, jj]
                if c == np.inf:
                    continue
                i2 = i + j_min + jj
                if i2 < 0:
                    continue
                if i2 >= s_n:
                    break
                val = c + v[i2]
                if val < best:
                    best = val
                    arg = jj
            nv[i] = best
            pick[t, i] = arg
        v[:] = nv
    i = -i_lo
    if v[i] == np.inf:
        return False
    for t in range(n):
        jj = pick[t, i]
        out[t] = mode[t, jj] and w[t]
        i += j_min + jj
    return True


@njit(cache=True, nogil=True)
def _count_dp(
    a_len: F64, a_slope: F64, a_left: F64, a_vl: F64, b_len: F64, b_slope: F64, b_left: F64,
    b_vl: F64, w: npt.NDArray[np.bool_], counted: npt.NDArray[np.bool_], step: float, lo: float,
    hi: float, end_lo: float, end_value: float, soc0: float, k_max: int, value: F64,
    out: npt.NDArray[np.bool_],
) -> None:  # fmt: skip
    """The battery's best choice with exactly e export-mode slots among the ``counted`` ones
    (those an EV could charge in), for every e <= k_max: the SoC-grid DP of :func:`_grid_dp`
    with the number of counted export slots still to come as a second state. ``value[e]``:
    its cost (inf: none); ``out[e]``: its choice."""
    n = a_len.shape[0]
    i_lo = -int(np.floor((soc0 - lo) / step + 1e-9))
    i_hi = int(np.floor((hi - soc0) / step + 1e-9))
    s_n = i_hi - i_lo + 1
    j_min, j_max = _change_range(a_len, a_left, b_len, b_left, w, step)
    nj = j_max - j_min + 1
    ca = np.empty((n, nj))
    cb = np.full((n, nj), np.inf)
    # Each mode's cost is finite on one interval of changes (a convex function's domain):
    # the loops below run over it only (half the work of running over every change).
    a_from, a_to = np.zeros(n, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    b_from, b_to = np.zeros(n, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    for t in range(n):
        for jj in range(nj):
            x = -(j_min + jj) * step
            ca[t, jj] = _cost_at(a_len[t], a_slope[t], a_left[t], a_vl[t], x)
            if w[t]:
                cb[t, jj] = _cost_at(b_len[t], b_slope[t], b_left[t], b_vl[t], x)
        a_from[t], a_to[t] = _finite(ca[t])
        b_from[t], b_to[t] = _finite(cb[t])
    w0 = 0  # the first choice slot: before it one layer does, run forwards from soc0
    while w0 < n and not w[w0]:
        w0 += 1
    i0 = -i_lo
    f = np.full(s_n, np.inf)
    f[i0] = 0.0
    nf = np.empty(s_n)
    pred = np.full((max(w0, 1), s_n), -1, dtype=np.int64)
    for t in range(w0):
        nf[:] = np.inf
        for i in range(s_n):
            if f[i] == np.inf:
                continue
            for jj in range(max(a_from[t], -i - j_min), min(a_to[t], s_n - 1 - i - j_min) + 1):
                i2 = i + j_min + jj
                c = f[i] + ca[t, jj]
                if c < nf[i2]:
                    nf[i2] = c
                    pred[t, i2] = jj
        f[:] = nf
    k1 = k_max + 1
    v = np.full((k1, s_n), np.inf)  # v[e, i]: e export slots still to come, SoC index i
    for i in range(s_n):
        s = soc0 + (i_lo + i) * step
        if s >= end_lo - 1e-9:
            v[0, i] = -end_value * s
    nv = np.empty((k1, s_n))
    pick = np.full((n, k1, s_n), -1, dtype=np.int64)  # jj, + nj where export mode
    left = 0  # counted choice slots from t on
    for t in range(n - 1, w0 - 1, -1):
        if counted[t]:
            left += 1
        top = min(left, k_max)
        nv[:] = np.inf
        for e in range(top + 1):
            # Export mode here: from e - 1 (a counted slot) or e (an uncounted one) on.
            eb = e - 1 if counted[t] else e
            for i in range(s_n):
                best = np.inf
                arg = -1
                for jj in range(max(a_from[t], -i - j_min), min(a_to[t], s_n - 1 - i - j_min) + 1):
                    val = ca[t, jj] + v[e, i + j_min + jj]
                    if val < best:
                        best = val
                        arg = jj
                if eb >= 0:
                    for jj in range(max(b_from[t], -i - j_min),
                                    min(b_to[t], s_n - 1 - i - j_min) + 1):  # fmt: skip
                        val = cb[t, jj] + v[eb, i + j_min + jj]
                        if val < best:
                            best = val
                            arg = jj + nj
                nv[e, i] = best
                pick[t, e, i] = arg
        v[:] = nv
    for e in range(k1):
        best = np.inf
        at = -1
        for i in range(s_n):
            if f[i] + v[e, i] < best:
                best = f[i] + v[e, i]
                at = i
        value[e] = best
        if best == np.inf:
            continue
        i = at
        for t in range(w0 - 1, -1, -1):  # the prefix, backwards through its predecessors
            jj = pred[t, i]
            out[e, t] = False
            i -= j_min + jj
        i = at
        r = e
        for t in range(w0, n):
            a = pick[t, r, i]
            exp_mode = a >= nj
            jj = a - nj if exp_mode else a
            out[e, t] = exp_mode
            if exp_mode and counted[t]:
                r -= 1
            i += j_min + jj


@njit(cache=True, nogil=True)
def _finite(c: F64) -> tuple[int, int]:
    """The first and last index where ``c`` is finite ((0, -1): nowhere)."""
    lo = 0
    while lo < c.size and c[lo] == np.inf:
        lo += 1
    hi = c.size - 1
    while hi >= lo and c[hi] == np.inf:
        hi -= 1
    return (0, -1) if lo > hi else (lo, hi)


@njit(cache=True, nogil=True)
def _change_range(
    a_len: F64, a_left: F64, b_len: F64, b_left: F64, w: npt.NDArray[np.bool_], step: float
) -> tuple[int, int]:
    """The SoC changes (in grid steps) either mode allows in some slot: the union of the
    modes' domains (b's only where ``w``), as (lowest, highest)."""
    j_min = 0
    j_max = 0
    for t in range(a_len.shape[0]):
        jl = int(np.ceil(-(a_left[t] + a_len[t].sum()) / step - 1e-9))
        jh = int(np.floor(-a_left[t] / step + 1e-9))
        if w[t]:
            jl = min(jl, int(np.ceil(-(b_left[t] + b_len[t].sum()) / step - 1e-9)))
            jh = max(jh, int(np.floor(-b_left[t] / step + 1e-9)))
        j_min = min(j_min, jl)
        j_max = max(j_max, jh)
    return j_min, j_max


@njit(cache=True, nogil=True)
def _value(
    tie: F64, priced: F64, pv: F64, load: F64, exp_cap: F64, imp_cap: F64, chg_cap: F64,
    export_p: F64, import_p: F64, ev_kwh: F64, dis_kwh: float, eta_c: float, eta_d: float,
    lo: float, hi: float, end_lo: float, end_value: float, soc0: float, first: int,
    soc_start: float, need: float, penalty: float, bracket: float, steps: int, guess: float,
    width: float, local_steps: int, ev_eff: float, ev_room: float, real_tie: F64,
) -> tuple[float, float]:  # fmt: skip
    """:func:`optimiser.joint_dp.solve_convex`'s objective (the model's, every term) and EV
    price for one choice, without building the plan."""
    n = pv.size
    # Zeros, not empty: plan a stays unset where no bisection runs (theta 0), and 0 * NaN
    # garbage is NaN (it made the no-export choice's cost NaN on random instances).
    soc_a, c_a, soc_b, c_b = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    theta, lam = _bisect(
        tie, priced, pv, load, exp_cap, imp_cap, chg_cap, export_p, import_p, ev_kwh, dis_kwh,
        eta_c, eta_d, lo, hi, end_lo, end_value, soc0, first, soc_start, need, penalty, bracket,
        soc_a, c_a, soc_b, c_b, steps, guess, width, local_steps,
    )  # fmt: skip
    if np.isnan(theta):
        return np.inf, -1.0
    soc = theta * soc_a + (1 - theta) * soc_b if theta > 0 else soc_b.copy()
    charge = theta * c_a + (1 - theta) * c_b if theta > 0 else c_b.copy()
    if ev_eff * charge.sum() > ev_room + 1e-9:
        return np.inf, -1.0
    zeros = np.zeros(n)
    _, _, _, _, brk, tags, ok = _slot_costs(
        pv, load, exp_cap, imp_cap, chg_cap, export_p, import_p, zeros, zeros, dis_kwh, eta_c,
        eta_d,
    )  # fmt: skip
    if not ok:
        return np.inf, -1.0
    y = load - pv + charge
    bd = np.zeros(n)
    prev = soc0
    for t in range(n):
        d = soc[t] - prev
        prev = soc[t]
        if d > 0:
            y[t] += d / eta_c
        else:
            y[t] += d * eta_d
            bd[t] = -d * eta_d
    imp, exp, curt, unserved, _ = _split(brk, tags, y, pv, exp_cap, zeros)
    delivered = (charge * priced).sum()
    short = ev_eff * max(0.0, need - delivered) if need > 0 else 0.0
    total = 0.0
    for t in range(n):
        total += import_p[t] * imp[t] - export_p[t] * exp[t] + real_tie[t] * charge[t]
        total += WEAR_P * bd[t] + CURTAIL_P * curt[t] + UNSERVED_P * unserved[t]
    return total + SHORTFALL_P * short - end_value * soc[n - 1], lam


@njit(cache=True, nogil=True)
def _lower(
    lam: float, tie: F64, priced: F64, pv: F64, load: F64, exp_cap: F64, imp_cap: F64,
    chg_cap: F64, export_p: F64, import_p: F64, ev_kwh: F64, dis_kwh: float, eta_c: float,
    eta_d: float, lo: float, hi: float, end_lo: float, end_value: float, soc0: float, first: int,
    soc_start: float,
) -> float:  # fmt: skip
    """The Lagrangian's value at EV price ``lam`` without the lam * need term (inf where the
    choice is infeasible): :func:`optimiser.joint_dp._run`, plus a pinned first slot's cost."""
    n = pv.size
    soc, charge = np.empty(n), np.empty(n)
    value = _run(
        lam, tie, priced, pv, load, exp_cap, imp_cap, chg_cap, export_p, import_p, ev_kwh,
        dis_kwh, eta_c, eta_d, lo, hi, end_lo, end_value, soc0, first, soc_start, soc, charge,
    )  # fmt: skip
    if np.isnan(value):
        return np.inf
    if first == 1:  # the pinned slot's own cost (the DP starts after it)
        r_len, r_slope, r_left, r_vl, _, _, _ = _slot_costs(
            pv[:1], load[:1], exp_cap[:1], imp_cap[:1], chg_cap[:1], export_p[:1], import_p[:1],
            ev_kwh[:1], lam * priced[:1] - tie[:1], dis_kwh, eta_c, eta_d,
        )  # fmt: skip
        value += _cost_at(r_len[0], r_slope[0], r_left[0], r_vl[0], soc0 - soc_start)
    return value
