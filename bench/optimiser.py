"""Optimiser benchmark (run by hand): the planner's paths against in-run references.

    .venv/bin/python bench/optimiser.py [--solves 200] [--cbc-solves 20] [--fleet 1000 10000]
                                        [--json bench/results/optimiser.json]

Problems use real Agile import and Agile Outgoing export prices (simulator/data) shifted per
problem, random loads and PV ("battery", "ev", "joint"); "io-go joint" uses IO Go's fixed rates
(7 p 23:30-05:30, 27 p otherwise, 15 p flat export) with a battery, an EV and daytime PV;
"io-flux" uses symmetric IO Flux rates (import = export in every slot).

Columns and references, each measured in the same run:
- planner: ``optimiser.Planner()`` (the fast exact path where the shape has one, else HiGHS);
- HiGHS warm: ``Planner(fast=False)``, one live HiGHS LP, only changed costs and bounds sent;
- HiGHS cold: a fresh model per solve; PuLP + CBC: the reference formulation;
- DP kernel: the compiled (numba) value-function kernel alone on precomputed slot costs: the
  "exact numba DP" the 48-slot battery goal is measured against.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is called optimiser.py: put the repository, not bench/, first on the path.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import csv
import json
import multiprocessing as mp
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from optimiser import EV, Battery, Grid, Planner, Problem, solve
from optimiser.battery_dp import _value_dp, slot_costs

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


def local_hours(n: int) -> np.ndarray:
    return np.array([(12 + i / 2) % 24 for i in range(n)])


def io_go_joint(seed: int, n: int = 48) -> Problem:
    """Battery + EV + daytime PV on IO Go: export (15 p) pays more than the night (7 p)."""
    rng = np.random.default_rng(seed)
    h = local_hours(n)
    imp = np.where((h >= 23.5) | (h < 5.5), 7.0, 27.0)
    pv = np.clip(np.sin((h - 6) / 12 * np.pi), 0, None) * rng.uniform(0, 2.5)
    ev = EV("car", 60, float(rng.uniform(5, 40)), float(rng.uniform(30, 60)),
            START + timedelta(hours=19), 7.4, (True,) * n)  # ready 07:00  # fmt: skip
    bat = Battery(9.5, float(rng.uniform(1, 9)), 0.95)
    return Problem(START, 30, imp, np.full(n, 15.0), rng.uniform(0.1, 1.2, n), pv, Grid(), bat, (ev,))


def io_flux_battery(seed: int, n: int = 48) -> Problem:
    """Battery and PV on IO Flux's symmetric rates: import and export prices equal."""
    rng = np.random.default_rng(seed)
    h = local_hours(n)
    price = np.where((h >= 16) & (h < 19), 33.88, np.where((h >= 2) & (h < 5), 16.0, 24.2))
    pv = np.clip(np.sin((h - 6) / 12 * np.pi), 0, None) * rng.uniform(0, 2.5)
    bat = Battery(9.5, float(rng.uniform(1, 9)), 0.95)
    return Problem(START, 30, price, price.copy(), rng.uniform(0.1, 1.2, n), pv, Grid(), bat, ())


def timed(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[float]:
    out = []
    for it in items:
        t = time.perf_counter()
        fn(it)
        out.append(time.perf_counter() - t)
    return out


def ms(xs: list[float], q: float | None = None) -> float:
    return 1e3 * (statistics.median(xs) if q is None else float(np.percentile(xs, q)))


def kernel_inputs(p: Problem) -> tuple[Any, ...]:
    b = p.battery
    assert b is not None
    h, n = p.slot_hours, p.n
    sc = slot_costs(p, p.load_kwh, np.full(n, p.grid.export_kw * h),
                    np.full(n, p.grid.import_kw * h), np.full(n, b.charge_kw * h))  # fmt: skip
    assert sc is not None
    end_lo = max(b.min_soc_kwh, b.final_min)
    return (sc.r_len, sc.r_slope, sc.r_left, sc.r_value_left, 0, b.min_soc_kwh, b.max_soc,
            end_lo, b.value_p_per_kwh, b.soc_kwh, np.empty(n))  # fmt: skip


def _fleet_worker(args: tuple[list[int], bool]) -> int:
    seeds, fast = args
    planner = Planner(fast=fast)
    planner.solve(problem("battery", 48, 10**6))  # compile / load the kernel before the clock
    return len(seeds)


def _fleet_solve(args: tuple[list[int], bool]) -> tuple[int, float]:
    seeds, fast = args
    planner = Planner(fast=fast)
    solving = 0.0
    for s in seeds:
        p = problem("battery", 48, s)
        t = time.perf_counter()
        planner.solve(p)
        solving += time.perf_counter() - t
    return len(seeds), solving


def fleet(sites: int, fast: bool, workers: int = 2) -> tuple[float, float]:
    """Wall seconds to build and plan ``sites`` 48-slot battery sites on ``workers``
    processes, and the busiest worker's seconds in ``Planner.solve`` alone."""
    chunks = [(list(range(i, sites, workers)), fast) for i in range(workers)]
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        pool.map(_fleet_worker, chunks)  # warm the workers (imports, numba cache)
        t = time.perf_counter()
        got = pool.map(_fleet_solve, chunks)
        elapsed = time.perf_counter() - t
    assert sum(n for n, _ in got) == sites
    return elapsed, max(s for _, s in got)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--solves", type=int, default=200)
    ap.add_argument("--cbc-solves", type=int, default=20)
    ap.add_argument("--fleet", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", choices=("paths", "battery", "io-go", "io-flux", "fleet"), nargs="*",
                    help="run these sections only (default: all)")
    args = ap.parse_args()
    run = set(args.only or ("paths", "battery", "io-go", "io-flux", "fleet"))
    out: dict[str, Any] = {"machine": machine()}
    Planner().solve(problem("battery", 48, 0))  # compile / load the numba kernel

    if "paths" in run:
        out["paths"] = paths_table(args)
    if "battery" in run:
        out["battery48"] = battery_vs_kernel(args)
    if "io-go" in run:
        out["io_go_joint"] = io_go(args)
    if "io-flux" in run:
        out["io_flux_highs"] = io_flux()
    if "fleet" in run:
        out["fleet"] = fleets(args)
    print(f"machine: {out['machine']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


def paths_table(args: argparse.Namespace) -> list[dict[str, Any]]:
    print("| problem | planner path | planner median ms | HiGHS warm ms | HiGHS cold ms | PuLP+CBC ms | warm / planner | CBC / planner |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for kind in ("battery", "ev", "joint"):
        for n in (48, 96):
            probs = [problem(kind, n, s) for s in range(args.solves)]
            planner = Planner()
            path = planner.solve(probs[0]).solver
            auto = ms(timed(planner.solve, probs))
            warm_planner = Planner(fast=False)
            warm_planner.solve(probs[0])
            warm = ms(timed(warm_planner.solve, probs))
            cold = ms(timed(lambda p: solve(p, "highs"), probs[:50]))
            cbc = ms(timed(lambda p: solve(p, "cbc"), probs[: args.cbc_solves]))
            rows.append({"problem": f"{kind} {n}", "path": path, "planner_ms": auto, "highs_warm_ms": warm,
                         "highs_cold_ms": cold, "cbc_ms": cbc})  # fmt: skip
            print(f"| {kind} {n} | {path} | {auto:.3f} | {warm:.2f} | {cold:.2f} | {cbc:.1f} | {warm / auto:.1f}x | {cbc / auto:.0f}x |")
    return rows


def battery_vs_kernel(args: argparse.Namespace) -> dict[str, float]:
    probs = [problem("battery", 48, s) for s in range(args.solves)]
    inputs = [kernel_inputs(p) for p in probs]
    kernel = ms(timed(lambda a: _value_dp(*a), inputs))
    planner = Planner()
    full = ms(timed(planner.solve, probs))
    print(f"\n48-slot battery: planner {full:.3f} ms median, DP kernel alone (numba) {kernel:.4f} ms: "
          f"{full / kernel:.1f}x the kernel")  # fmt: skip
    return {"planner_ms": full, "kernel_ms": kernel, "ratio": full / kernel}


def io_go(args: argparse.Namespace) -> dict[str, Any]:
    """The IO Go joint goal: the planner (optimiser.export_modes) against the HiGHS MILP it
    replaces, on the same instances in the same run, and its gap to the MILP's optimum."""
    iogo = [io_go_joint(s) for s in range(args.solves)]
    res: dict[str, Any] = {}
    plans: dict[str, list[float]] = {}
    for label, pl in (("planner", Planner()), ("HiGHS MIP", Planner(fast=False)),
                      ("HiGHS MIP, 0.5 p gap (the daemon's)",
                       Planner(mip_abs_gap_p=0.5, fast=False))):  # fmt: skip
        t, objs = [], []
        for p in iogo:
            t0 = time.perf_counter()
            s = pl.solve(p)
            t.append(time.perf_counter() - t0)
            objs.append(s.objective_p)
        plans[label] = objs
        res[label] = {"median_ms": ms(t), "p95_ms": ms(t, 95), "max_ms": 1e3 * max(t),
                      "paths": dict(pl.paths)}  # fmt: skip
        print(f"IO Go joint ({label}): median {ms(t):.2f} ms, p95 {ms(t, 95):.2f} ms, "
              f"max {1e3 * max(t):.1f} ms; paths {dict(pl.paths)}")  # fmt: skip
    ref, fast = res["HiGHS MIP"], res["planner"]
    shares = [(f - m) / max(0.0025 * abs(m), 0.5)
              for f, m in zip(plans["planner"], plans["HiGHS MIP"], strict=True)]  # fmt: skip
    res["ratio_median"] = ref["median_ms"] / fast["median_ms"]
    res["ratio_p95"] = ref["p95_ms"] / fast["p95_ms"]
    res["gap_worst_share"] = max(shares)
    res["gap_beyond"] = sum(g > 1.0 for g in shares)
    print(f"IO Go joint: HiGHS MIP / planner {res['ratio_median']:.0f}x (median), "
          f"{res['ratio_p95']:.0f}x (p95); planner vs the MILP optimum: worst "
          f"{max(shares):.3f} of the allowed gap max(0.25 %, 0.5 p), "
          f"{res['gap_beyond']} of {len(shares)} beyond")  # fmt: skip
    return res


def io_flux() -> dict[str, Any]:
    flux = [io_flux_battery(s) for s in range(2000)]
    hp = Planner(fast=False)
    t = timed(hp.solve, flux)
    print(f"IO Flux battery sites on HiGHS (import = export): {hp.highs.mip_solves} of 2,000 "
          f"went to the MIP; warm median {ms(t):.2f} ms")  # fmt: skip
    return {"sites": 2000, "mip": hp.highs.mip_solves, "median_ms": ms(t)}


def fleets(args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for sites in args.fleet:
        dp, dp_solve = fleet(sites, fast=True)
        hs, hs_solve = fleet(sites, fast=False)
        out.append({"sites": sites, "planner_s": dp, "planner_solve_s": dp_solve,
                             "highs_warm_s": hs, "highs_warm_solve_s": hs_solve})  # fmt: skip
        print(f"re-plan {sites:,} battery sites (48 slots) on 2 processes, wall (solve alone, "
              f"busiest worker): planner {dp:.2f} s ({dp_solve:.2f} s), HiGHS warm {hs:.2f} s "
              f"({hs_solve:.2f} s); HiGHS / planner {hs / dp:.1f}x ({hs_solve / dp_solve:.1f}x)")  # fmt: skip
    return out


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores (nproc), {model}, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
