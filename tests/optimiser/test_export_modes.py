"""The export-modes path (battery + one EV where export pays more than import, IO Go) against
the HiGHS MILP: never better than the MILP (it is a MILP-feasible plan), never worse than
max(0.25 %, 0.5 p) of it on IO Go-like sites (2,000 random ones per CI run, a fixed draw; the larger hand run
is in BENCHMARKS.md, ``bench/export_modes_gap.py``)."""

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimiser import EV, Battery, FirstSlot, Grid, Problem, solve
from optimiser.export_modes import Modes, solve_export_modes
from tests.optimiser.invariants import check
from tests.optimiser.test_fast import START, random_battery


def allowed_gap(milp_p: float) -> float:
    return max(0.0025 * abs(milp_p), 0.5)


def io_go_like(rng: np.random.Generator) -> Problem:
    """A day from noon: a cheap night (5-9 p) under a flat export (12-16 p), a dear day,
    daytime PV, a battery and an EV wanted by the morning."""
    n = 48
    hours = (12 + np.arange(n) / 2) % 24
    night_from = float(rng.choice([22.5, 23.0, 23.5, 0.5]))
    night_h = float(rng.choice([4.0, 6.0, 7.0]))
    night = ((hours - night_from) % 24) < night_h
    imp = np.where(night, float(rng.uniform(5, 9)), float(rng.uniform(20, 35))).round(2)
    exp = np.full(n, float(rng.uniform(12, 16))).round(2)
    pv = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None) * float(rng.uniform(0, 3))
    cap = float(rng.uniform(4, 16))
    bat = Battery(cap, float(rng.uniform(0.1, 1)) * cap, 0.1 * cap,
                  charge_kw=float(rng.uniform(2, 6)), discharge_kw=float(rng.uniform(2, 6)),
                  charge_efficiency=float(rng.uniform(0.9, 0.98)),
                  discharge_efficiency=float(rng.uniform(0.9, 0.98)))  # fmt: skip
    ready = int(rng.integers(36, 44))  # 06:00 .. 10:00
    ev = EV("car", 60.0, float(rng.uniform(5, 40)), float(rng.uniform(30, 60)),
            START + timedelta(minutes=30 * ready), float(rng.choice([3.6, 7.4, 11.0])),
            (True,) * n)  # fmt: skip
    return Problem(START, 30, imp, exp, rng.uniform(0.1, 1.5, n), pv,
                   Grid(15.0, float(rng.choice([3.68, 5.0, 10.0]))), bat, (ev,))  # fmt: skip


def random_arbitrage(rng: np.random.Generator) -> Problem:
    """Random prices, and in one window of slots one cheap import price under one dearer
    export price (the shape the path takes: a tariff's cheap window)."""
    n = int(rng.integers(2, 49))
    imp = rng.uniform(0, 40, n).round(2)
    exp = (imp * rng.uniform(0, 1, n)).round(3)
    first = int(rng.integers(0, n))
    arb = np.zeros(n, dtype=bool)
    arb[first : first + int(rng.integers(1, 17))] = True
    cheap = float(rng.uniform(0, 20))
    imp[arb] = round(cheap, 2)
    exp[arb] = round(cheap + float(rng.uniform(0.01, 15)), 2)
    k = int(rng.integers(1, n + 1))
    plugged = rng.random(n) > 0.2
    if rng.random() < 0.8:
        plugged |= arb  # in through the cheap window (else the path declines: applies())
    ev = EV("car", 60.0, float(rng.uniform(0, 40)), float(rng.uniform(20, 60)),
            START + timedelta(minutes=30 * k), float(rng.uniform(2, 11)),
            tuple(bool(x) for x in plugged), float(rng.uniform(0.8, 1)))  # fmt: skip
    pv = rng.uniform(0, 3, n) * (rng.random() < 0.5)
    return Problem(START, 30, imp, exp, rng.uniform(0, 1.5, n), pv,
                   Grid(float(rng.uniform(8, 20)), float(rng.uniform(0, 6))), random_battery(rng),
                   (ev,))  # fmt: skip


def pin_first_slot(p: Problem, rng: np.random.Generator) -> Problem:
    """The daemon's re-plan keeps what runs now: the first slot's battery and EV pinned."""
    charge = float(rng.uniform(0, 1.5)) if rng.random() < 0.5 else 0.0
    discharge = 0.0 if charge > 0 else float(rng.uniform(0, 1.5)) * (rng.random() < 0.7)
    ev = (("car", float(rng.uniform(0, 3))),) if rng.random() < 0.5 else ()
    return replace(p, first_slot=FirstSlot(charge, discharge, ev))


def io_go_site(seed: int, pinned: bool) -> tuple[Problem, np.random.Generator]:
    """An IO Go-like site from a seed, its first slot pinned or not (and the generator, for
    more draws)."""
    rng = np.random.default_rng(seed)
    p = io_go_like(rng)
    return (pin_first_slot(p, rng) if pinned else p), rng


# Derandomized: the same 2,000 sites every run (about 3 minutes: the MILP reference is most of
# it). The path is a search, not a proof, so a fresh draw each run could find a site beyond the
# gap and fail CI at random; a fixed draw fails only when the code changes. The hand run
# (bench/export_modes_gap.py, BENCHMARKS.md) measures it on more, unpinned.
@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True, database=None)  # fmt: skip
@given(seed=st.integers(0, 2**32 - 1), pinned=st.booleans())
def test_export_modes_within_the_gap_of_the_milp(seed, pinned):
    p, _ = io_go_site(seed, pinned)
    try:
        milp = solve(p, "highs")
    except RuntimeError:  # a pin past the SoC bounds: the fast path must not answer either
        assert solve_export_modes(p) is None
        return
    fast = solve_export_modes(p)
    assert fast is not None  # the shape it is for: it must answer
    check(p, fast)
    assert fast.solver == "export-modes" and any("MILP" in note for note in fast.notes)
    gap = fast.objective_p - milp.objective_p
    assert gap >= -1e-6 * max(1.0, abs(milp.objective_p))  # a MILP-feasible plan
    assert gap <= allowed_gap(milp.objective_p)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_export_modes_on_random_shapes_is_feasible_and_never_beats_the_milp(seed):
    # Random prices, batteries and plug-in patterns: where the path answers, its plan keeps
    # every rule and costs what it says (never below the MILP's optimum). Its gap on these
    # shapes is measured by hand (bench/export_modes_gap.py: 1 of ~550 beyond the allowed gap).
    p = random_arbitrage(np.random.default_rng(seed))
    try:
        milp = solve(p, "highs")
    except RuntimeError:  # infeasible SoC bounds: the fast path must not answer either
        assert solve_export_modes(p) is None
        return
    fast = solve_export_modes(p)
    if fast is None:
        return  # not its shape, or an EV or load left short: HiGHS plans it
    check(p, fast)
    assert fast.objective_p >= milp.objective_p - 1e-6 * max(1.0, abs(milp.objective_p))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_each_choice_is_solved_exactly(seed):
    # The MILP's own import-or-export choice, solved by the path's exact convex solve, gives
    # the MILP's optimum: the only thing the path can get wrong is the choice.
    p = io_go_like(np.random.default_rng(seed))
    milp = solve(p, "highs")
    m = Modes(p)
    plan = m.exact(m.w & (milp.grid_export_kwh > 1e-6))
    assert plan is not None
    assert plan.objective == pytest.approx(milp.objective_p, rel=1e-6, abs=1e-6)


def test_planner_takes_io_go_sites_and_declines_other_shapes():
    n = 48
    bat = Battery(9.5, 5.0, 0.95)
    ev = EV("car", 60, 20, 50, START + timedelta(hours=20), 7.4, (True,) * n)
    night = np.where((np.arange(n) >= 23) & (np.arange(n) < 35), 7.0, 27.0)
    io_go = Problem(START, 30, night, np.full(n, 15.0), np.full(n, 0.4), np.zeros(n), Grid(),
                    bat, (ev,))  # fmt: skip
    s = solve(io_go)
    assert s.solver == "export-modes" and not s.mip
    assert s.objective_p <= solve(io_go, "highs").objective_p + allowed_gap(s.objective_p)
    # Export below import everywhere: the exact joint path, not this one.
    assert solve_export_modes(Problem(START, 30, night, night * 0.5, np.full(n, 0.4),
                                      np.zeros(n), Grid(), bat, (ev,))) is None  # fmt: skip
    two = Problem(START, 30, night, np.full(n, 15.0), np.full(n, 0.4), np.zeros(n), Grid(), bat,
                  (ev, EV("van", 60, 20, 50, START + timedelta(hours=20), 7.4, (True,) * n)))  # fmt: skip
    assert solve_export_modes(two) is None and solve(two).solver == "highs"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), pinned=st.booleans())
def test_the_lagrangian_bound_never_exceeds_a_choices_exact_value(seed, pinned):
    # The search skips a neighbour whose bound cannot beat the best plan: safe only if the
    # bound is one (weak duality) at any EV price, pinned first slot included.
    p, rng = io_go_site(seed, pinned)
    m = Modes(p)
    for _ in range(4):
        choice = m.w & (rng.random(p.n) < 0.3)
        value, lam = m.value(choice, -1.0)
        if not np.isfinite(value):
            continue
        for price in (lam, 0.8 * lam + 0.1, lam + 1.0, 0.0):
            assert m.lower(choice, price) <= value + 1e-6 * max(1.0, abs(value))
        assert m.lower(choice, lam) == pytest.approx(value, abs=0.05)  # tight at its own price
