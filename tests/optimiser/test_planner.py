"""The reusable planner: many consecutive solves on one object, and which path each shape takes."""

from datetime import UTC, datetime

import numpy as np
import pytest

import optimiser
from optimiser import Battery, Grid, Planner, Problem, solve
from tests.optimiser.invariants import check

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def battery_problem(rng: np.random.Generator, n: int) -> Problem:
    imp = rng.uniform(5, 35, n)
    return Problem(START, 30, imp, imp * 0.5, rng.uniform(0.1, 1, n), np.zeros(n), Grid(),
                   Battery(9.5, float(rng.uniform(1, 9)), 0.95), ())  # fmt: skip


def test_twenty_thousand_consecutive_solves_on_one_planner():
    # HiGHS counts time_limit over the object's whole life (issue 15): with a 50 ms limit, the
    # old planner failed every solve after a few hundred warm ones. The HiGHS path is forced
    # (the battery-only fast path would never touch HiGHS) so the live model is the one reused.
    rng = np.random.default_rng(15)
    problems = [battery_problem(rng, 6) for _ in range(40)]
    expected = [solve(p, "highs").objective_p for p in problems]
    planner = Planner(time_limit_s=0.05, fast=False)
    for i in range(20_000):
        s = planner.solve(problems[i % 40])
        assert s.status == "optimal", i
        assert s.objective_p == pytest.approx(expected[i % 40], rel=1e-9, abs=1e-9), i
    assert planner.highs.warm_solves == 19_999
    assert planner.highs.cold_solves == 1


def test_highs_planner_is_the_planner():
    assert optimiser.HighsPlanner is optimiser.Planner


def test_planner_routes_each_shape_and_agrees_with_highs():
    rng = np.random.default_rng(3)
    planner = Planner()
    p = battery_problem(rng, 48)
    s = planner.solve(p)
    check(p, s)
    assert s.solver == "battery-dp"
    assert s.objective_p == pytest.approx(solve(p, "highs").objective_p, rel=1e-6)
    neg = Problem(START, 30, np.array([-5.0, 20.0, 30.0, 10.0]), np.zeros(4), np.full(4, 0.5),
                  np.zeros(4), Grid(), Battery(9.5, 4.0, 0.95), ())  # fmt: skip
    s = planner.solve(neg)  # a negative price: charging and discharging at once may pay
    check(neg, s)
    assert s.solver == "highs"
    assert planner.paths["battery-dp"] == 1
    assert planner.paths["highs"] + planner.paths["highs-mip"] == 1
