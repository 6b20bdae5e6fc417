"""Golden cases, invariants on random problems, and the cross-check against PuLP + CBC."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimiser import EV, Battery, Grid, Planner, Problem, parse_problem, solve
from tests.optimiser.invariants import check

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"


def problem(prices, *, export=None, load=None, pv=None, battery=None, evs=(), grid=None, start=START):
    n = len(prices)
    z = np.zeros(n)
    return Problem(start, 30, np.asarray(prices, float),
                   np.asarray(export if export is not None else z, float),
                   np.asarray(load if load is not None else z, float),
                   np.asarray(pv if pv is not None else z, float), grid or Grid(), battery, tuple(evs))  # fmt: skip


def car(n, soc=20.0, target=50.0, ready=None, cap=None, plugged=None, max_kw=7.4, start=START):
    return EV("car", 60.0, soc, target, ready or start + timedelta(minutes=30 * n), max_kw,
              tuple(plugged if plugged is not None else [True] * n), 0.9, 0.0, cap)  # fmt: skip


def both(p):
    a = solve(p)
    check(p, a)
    h = solve(p, "highs")
    check(p, h)
    assert a.objective_p == pytest.approx(h.objective_p, rel=1e-6, abs=1e-6)
    b = solve(p, "cbc")
    check(p, b)
    assert a.objective_p == pytest.approx(b.objective_p, rel=1e-6, abs=1e-6)
    return a


def test_ev_takes_the_cheapest_slots_and_earliest_on_ties():
    prices = [30.0] * 24
    for i in (5, 9, 10, 11, 12, 20):
        prices[i] = 7.0
    s = both(problem(prices, evs=[car(24, target=20 + 0.9 * 3.7 * 4)]))
    on = [i for i, x in enumerate(s.evs[0].charge_kwh) if x > 1e-6]
    assert on == [5, 9, 10, 11]  # four cheapest, earliest of the five 7p slots
    assert s.evs[0].dispatches[0].start == START + timedelta(minutes=150)


def test_io_flux_battery_exports_in_the_peak():
    # 16:00-19:00 peak at 34p both ways, 24p otherwise (symmetric IO Flux rates), a day from noon.
    local = [(12 + i / 2) % 24 for i in range(48)]
    price = [33.88 if 16 <= h < 19 else 24.20 for h in local]
    bat = Battery(9.5, 9.5, 1.9, final_soc_kwh_min=1.9)
    s = both(problem(price, export=price, load=[0.2] * 48, battery=bat))
    peak = [i for i, h in enumerate(local) if 16 <= h < 19]
    assert s.grid_export_kwh[peak].sum() > 5.0
    assert s.grid_export_kwh[[i for i in range(48) if i not in peak]].sum() < 1e-6
    assert s.battery_soc_kwh.min() >= 1.9 - 1e-6


def test_io_go_capped_ev_uses_at_most_12_slots_per_midday_period():
    prices = [7.0] * 48
    s = both(problem(prices, evs=[car(48, soc=0.0, target=60.0, cap=12)]))
    on = int((s.evs[0].charge_kwh > 1e-6).sum())
    assert on == 12
    assert s.evs[0].shortfall_kwh > 0  # 12 x 3.7 x 0.9 = 40 kWh < 60 kWh


def test_negative_prices_never_charge_and_discharge_at_once():
    prices = [-10.0] * 8 + [30.0] * 8
    bat = Battery(9.5, 4.75, 0.95)
    s = both(problem(prices, export=[0.0] * 16, load=[0.3] * 16, battery=bat))
    assert s.battery_charge_kwh[:8].sum() > 4.0


def test_unreachable_target_reports_the_shortfall():
    s = both(problem([10.0] * 4, evs=[car(4, soc=10.0, target=60.0)]))
    e = s.evs[0]
    assert e.shortfall_kwh == pytest.approx(60.0 - 10.0 - 4 * 3.7 * 0.9)
    assert s.status == "optimal" and e.charge_kwh.sum() == pytest.approx(4 * 3.7)


def test_pv_surplus_goes_into_the_battery():
    pv = [0.0] * 4 + [2.0] * 8 + [0.0] * 4
    prices = [30.0] * 16
    bat = Battery(9.5, 1.0, 0.5, final_soc_kwh_min=0.5)
    load = [0.3] * 12 + [1.5] * 4  # the evening needs what the afternoon's PV can store
    s = both(problem(prices, export=[4.0] * 16, load=load, pv=pv, battery=bat))
    assert s.battery_charge_kwh[4:12].sum() > 5.0
    assert s.grid_import_kwh[4:12].sum() < 1e-6


def test_real_agile_day_sample(tmp_path):
    p = parse_problem(json.loads((SAMPLES / "problem.json").read_text()))
    s = both(p)
    assert s.evs[0].shortfall_kwh < 1e-6
    # The battery sells into the real 2021-01-14 evening export spike.
    assert s.grid_export_kwh[9:13].sum() > 3.0


def test_planner_warm_solves_match_cold():
    rng = np.random.default_rng(5)
    planner = Planner(fast=False)
    for _ in range(6):
        prices = rng.uniform(5, 35, 48)
        p = problem(prices, export=prices * 0.4, load=rng.uniform(0.1, 1, 48), battery=Battery(9.5, 4.75, 0.95))
        warm = planner.solve(p)
        check(p, warm)
        assert warm.objective_p == pytest.approx(solve(p).objective_p, rel=1e-9, abs=1e-9)
    assert planner.highs.warm_solves == 5


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([8, 16, 24]),
    seed=st.integers(0, 10_000),
    with_battery=st.booleans(),
    n_evs=st.integers(0, 2),
    cap=st.sampled_from([None, 3, 6]),
)
def test_invariants_and_reference_on_random_problems(n, seed, with_battery, n_evs, cap):
    rng = np.random.default_rng(seed)
    imp = rng.uniform(-5, 40, n).round(4)
    exp = (imp * rng.uniform(0.2, 1.1, n)).round(4)
    bat = None
    if with_battery:
        capk = float(rng.uniform(2, 13))
        lo = float(rng.uniform(0, 0.3)) * capk
        bat = Battery(capk, float(rng.uniform(lo, capk)), lo, charge_kw=float(rng.uniform(1, 5)),
                      discharge_kw=float(rng.uniform(1, 5)), charge_efficiency=float(rng.uniform(0.85, 1)),
                      discharge_efficiency=float(rng.uniform(0.85, 1)), grid_charge=bool(rng.random() > 0.3),
                      grid_export=bool(rng.random() > 0.3))  # fmt: skip
    evs = []
    for i in range(n_evs):
        k = int(rng.integers(1, n + 1))
        ev = EV(f"ev{i}", 60.0, float(rng.uniform(0, 40)), float(rng.uniform(20, 60)),
                START + timedelta(minutes=30 * k), float(rng.uniform(2, 11)),
                tuple(bool(x) for x in rng.random(n) > 0.2), float(rng.uniform(0.8, 1)), 0.0, cap)  # fmt: skip
        evs.append(ev)
    p = problem(imp, export=exp, load=rng.uniform(0, 1.5, n), pv=rng.uniform(0, 2, n), battery=bat,
                evs=evs, grid=Grid(float(rng.uniform(5, 20)), float(rng.uniform(0, 6))))  # fmt: skip
    both(p)


def test_planner_gap_keeps_a_mip_plan_within_the_gap_of_the_best():
    # Export worth more than import (IO Go's flat export over its off-peak rate) makes grid
    # arbitrage a MIP; the daemon's planner stops within half a penny of the best.
    rng = np.random.default_rng(11)
    imp = np.where(np.arange(24) < 12, 7.0, rng.uniform(20, 35, 24))
    p = problem(imp, export=np.full(24, 15.0), load=rng.uniform(0.2, 1, 24),
                battery=Battery(9.5, 4.75, 0.95), evs=[car(24, soc=20, target=45)])  # fmt: skip
    exact = solve(p, "highs")
    assert exact.mip
    gapped = Planner(mip_abs_gap_p=0.5, fast=False).solve(p)  # (fast: optimiser.export_modes)
    check(p, gapped)
    assert exact.objective_p <= gapped.objective_p <= exact.objective_p + 0.5 + 1e-6
