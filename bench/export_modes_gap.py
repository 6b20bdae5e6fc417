"""The export-modes path's distance to the HiGHS MILP optimum, on many random instances (run
by hand; CI runs 300 IO Go-like ones per run in tests/optimiser/test_export_modes.py).

    .venv/bin/python bench/export_modes_gap.py [--io-go 2000] [--bench 1000] [--random 2000]
                                               [--workers 2] [--json bench/results/export_modes_gap.json]

Three instance families, seeds 0..N-1 each:
- ``io-go``: tests/optimiser/test_export_modes.io_go_like (random battery size and rates, EV,
  night window, export limit, PV; the CI test's generator);
- ``bench``: bench/optimiser.io_go_joint (the IO Go goal's 200 instances are seeds 0..199);
- ``random``: tests/optimiser/test_export_modes.random_arbitrage (random prices around one cheap
  window, random batteries and plug-in patterns); the path declines most of these (not its
  shape) and HiGHS plans them.

For each answered instance: gap = path objective - MILP objective, as a share of the allowed
gap max(0.25 % of |MILP|, 0.5 p). Prints, per family: answered, beyond the allowed gap, the
worst share, and the path's median and p95 time.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import multiprocessing as mp
import time
from typing import Any

import numpy as np

from optimiser import solve
from optimiser.export_modes import solve_export_modes
from tests.optimiser.test_export_modes import allowed_gap, io_go_like, random_arbitrage


def _instance(family: str, seed: int) -> Any:
    if family == "io-go":
        return io_go_like(np.random.default_rng(seed))
    if family == "random":
        return random_arbitrage(np.random.default_rng(seed))
    import importlib.util

    spec = importlib.util.spec_from_file_location("bo", Path(__file__).with_name("optimiser.py"))
    assert spec is not None and spec.loader is not None
    bo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bo)
    return bo.io_go_joint(seed)


def _one(args: tuple[str, int]) -> tuple[int, float | None, float]:
    """(seed, gap share or None where the path declines or the problem is infeasible, s)."""
    family, seed = args
    p = _instance(family, seed)
    try:
        milp = solve(p, "highs")
    except RuntimeError:
        return seed, None, 0.0
    t = time.perf_counter()
    fast = solve_export_modes(p)
    took = time.perf_counter() - t
    if fast is None:
        return seed, None, took
    return seed, (fast.objective_p - milp.objective_p) / allowed_gap(milp.objective_p), took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--io-go", type=int, default=2000)
    ap.add_argument("--bench", type=int, default=1000)
    ap.add_argument("--random", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    solve_export_modes(io_go_like(np.random.default_rng(0)))  # compile before the clock
    out: dict[str, Any] = {}
    with mp.get_context("fork").Pool(args.workers) as pool:
        for family, count in (("io-go", args.io_go), ("bench", args.bench),
                              ("random", args.random)):  # fmt: skip
            if count == 0:
                continue
            got = pool.map(_one, [(family, s) for s in range(count)], chunksize=20)
            shares = [(s, g) for s, g, _ in got if g is not None]
            times = [t for _, g, t in got if g is not None]
            beyond = [(s, round(g, 3)) for s, g in shares if g > 1.0]
            worst = max((g for _, g in shares), default=0.0)
            better = min((g for _, g in shares), default=0.0)
            out[family] = {
                "instances": count, "answered": len(shares), "beyond_allowed_gap": beyond,
                "worst_share_of_allowed_gap": worst, "lowest_share": better,
                "median_ms": 1e3 * float(np.median(times)) if times else None,
                "p95_ms": 1e3 * float(np.percentile(times, 95)) if times else None,
            }  # fmt: skip
            print(f"{family}: {len(shares)} of {count} answered, {len(beyond)} beyond the "
                  f"allowed gap {beyond}, worst {worst:.3f} of it (lowest {better:.2e}); "
                  f"median {out[family]['median_ms']:.2f} ms, p95 {out[family]['p95_ms']:.2f} ms "
                  f"(2 workers on 2 cores: slower than alone)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
