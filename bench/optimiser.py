"""Optimiser benchmark (run by hand): HiGHS path vs the PuLP + CBC reference, and a fleet re-plan.

    .venv/bin/python bench/optimiser.py [--solves 200] [--fleet 1000 10000]

Problems use real Agile import and Agile Outgoing export prices (simulator/data) shifted per
problem, random loads and PV. "highs cold" builds and solves a fresh model; "highs warm" reuses
one live model per shape (HighsPlanner) and changes only costs and bounds.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is called optimiser.py: put the repository, not bench/, first on the path.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import csv
import multiprocessing as mp
import platform
import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from optimiser import EV, Battery, Grid, HighsPlanner, Problem, solve

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 1, 15, 12, tzinfo=UTC)


def prices() -> tuple[np.ndarray, np.ndarray]:
    rows = list(csv.DictReader((ROOT / "simulator/data/agile_2021_01.csv").open()))
    return np.array([float(r["import_p"]) for r in rows]), np.array([float(r["export_p"]) for r in rows])


IMP, EXP = prices()


def problem(kind: str, n: int, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    off = int(rng.integers(0, IMP.size - n))
    imp, exp = IMP[off : off + n].copy(), np.minimum(EXP[off : off + n], IMP[off : off + n] * 0.9)
    load = rng.uniform(0.1, 1.2, n)
    pv = np.clip(np.sin(np.linspace(0, np.pi * n / 48, n)) * rng.uniform(0, 2), 0, None)
    battery = Battery(9.5, float(rng.uniform(2, 9)), 0.95) if kind in ("battery", "joint") else None
    evs: tuple[EV, ...] = ()
    if kind in ("ev", "joint"):
        evs = (EV("car", 60, float(rng.uniform(10, 30)), 50, START + timedelta(minutes=30 * (n - 4)), 7.4,
                  tuple([True] * n)),)  # fmt: skip
    return Problem(START, 30, imp, exp, load, pv, Grid(), battery, evs)


def timed(fn, items) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for it in items:
        t = time.perf_counter()
        fn(it)
        out.append(time.perf_counter() - t)
    return out


def _fleet_worker(seeds: list[int]) -> int:
    planner = HighsPlanner()
    for s in seeds:
        planner.solve(problem("battery", 48, s))
    return len(seeds)


def fleet(sites: int, workers: int = 2) -> float:
    chunks = [list(range(i, sites, workers)) for i in range(workers)]
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        t = time.perf_counter()
        done = sum(pool.map(_fleet_worker, chunks))
        elapsed = time.perf_counter() - t
    assert done == sites
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--solves", type=int, default=200)
    ap.add_argument("--cbc-solves", type=int, default=20)
    ap.add_argument("--fleet", type=int, nargs="*", default=[1000, 10000])
    args = ap.parse_args()
    print("| problem | highs cold median ms | highs warm median ms | warm solves/s | PuLP+CBC median ms | CBC / warm |")
    print("|---|---|---|---|---|---|")
    for kind in ("battery", "ev", "joint"):
        for n in (48, 96):
            probs = [problem(kind, n, s) for s in range(args.solves)]
            cold = statistics.median(timed(solve, probs[:50]))
            planner = HighsPlanner()
            planner.solve(probs[0])
            warm_t = timed(planner.solve, probs)
            warm = statistics.median(warm_t)
            cbc = statistics.median(timed(lambda p: solve(p, "cbc"), probs[: args.cbc_solves]))
            print(f"| {kind} {n} | {cold * 1e3:.2f} | {warm * 1e3:.2f} | {1 / warm:.0f} | {cbc * 1e3:.1f} | {cbc / warm:.0f}x |")
    for sites in args.fleet:
        print(f"re-plan {sites:,} battery sites (48 slots) on 2 processes: {fleet(sites):.2f} s")
    print(f"machine: {platform.machine()}, {mp.cpu_count()} cores, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
