"""Rating benchmark (run by hand): slots rated per second, vectorised core vs per-slot reference.

    .venv/bin/python bench/rating.py [--meters 200] [--reference-meters 2]

A year of half-hours per meter (IO Go capped: import and ev registers, SMART/BOOST dispatches
most nights), rated by (1) the vectorised core on prebuilt arrays, (2) the whole Python API and
CSV path, (3) the plain per-slot reference on a subset, which also cross-checks results.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is called rating.py: put the repository, not bench/, first on the path.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import platform
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

import rating
from rating.csv_fast import rate_csv_text
from rating.engine import build_input, rate_core
from rating.reference import rate_reference

START = datetime(2025, 1, 1, tzinfo=UTC)
HH = timedelta(minutes=30)


def make(meters: int, seed: int = 1) -> tuple[list[rating.Reading], list[rating.Dispatch]]:
    rng = np.random.default_rng(seed)
    n = 17520
    readings: list[rating.Reading] = []
    dispatches: list[rating.Dispatch] = []
    for m in range(meters):
        mid = f"M{m:06d}"
        kwh = rng.gamma(2.0, 0.15, n).round(3)
        ev = np.zeros(n)
        for day in range(365):
            if rng.random() < 0.6:
                s = START + timedelta(
                    days=day, hours=float(rng.integers(20, 27)), minutes=float(rng.integers(0, 60))
                )
                e = s + timedelta(minutes=float(rng.integers(20, 300)))
                kind = "smart" if rng.random() < 0.9 else "boost"
                dispatches.append(rating.Dispatch(mid, s, e, kind))
                i0 = int((s - START) / HH)
                i1 = min(n, int((e - START) / HH) + 1)
                ev[i0:i1] = 3.6
        for i in range(n):
            t = START + i * HH
            readings.append(
                rating.Reading(mid, t, Decimal(str(round(kwh[i] + ev[i], 3))), "import")
            )
            if ev[i]:
                readings.append(rating.Reading(mid, t, Decimal("3.600"), "ev"))
    return readings, dispatches


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--meters", type=int, default=200)
    ap.add_argument("--reference-meters", type=int, default=2)
    args = ap.parse_args()
    tariff = rating.load_tariff("io-go-capped")
    t = time.perf_counter()
    readings, dispatches = make(args.meters)
    print(
        f"generated {len(readings):,} readings, {len(dispatches):,} dispatches in {time.perf_counter() - t:.1f} s"
    )
    inp, _meters = build_input(tariff, readings, dispatches, None)
    rate_core(tariff, inp)  # warm-up
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        out = rate_core(tariff, inp)
        runs.append(time.perf_counter() - t)
    core = min(runs)
    n = inp.start.size
    tracemalloc.start()
    rate_core(tariff, inp)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    in_bytes = sum(a.nbytes for a in (inp.meter, inp.start, inp.register, inp.kwh_c))
    out_bytes = sum(a.nbytes for a in (out.band, out.billed_kwh_c, out.rate, out.cost_c, out.keep))
    print(
        f"core: {n:,} slots in {core * 1000:.1f} ms = {n / core / 1e6:.1f} M slots/s "
        f"(arrays {(in_bytes + out_bytes) / n:.0f} B/slot, peak working memory {peak / n:.0f} B/slot)"
    )
    sub_r = [r for r in readings if int(r.meter[1:]) < args.reference_meters]
    sub_d = [d for d in dispatches if int(d.meter[1:]) < args.reference_meters]
    t = time.perf_counter()
    api = rating.rate(tariff, sub_r, sub_d)
    text = rating.rated_csv_text(api)
    api_s = time.perf_counter() - t
    t = time.perf_counter()
    ref = rate_reference(tariff, sub_r, sub_d)
    ref_s = time.perf_counter() - t
    assert api == ref, "vectorised engine and reference disagree"
    print(
        f"API + CSV path: {len(sub_r):,} slots in {api_s:.2f} s = {len(sub_r) / api_s / 1e3:.0f} k slots/s ({len(text) / 1e6:.1f} MB CSV)"
    )
    print(
        f"per-slot reference: {len(sub_r) / ref_s / 1e3:.1f} k slots/s; results identical on {len(sub_r):,} slots"
    )
    t = time.perf_counter()
    fast = rate_csv_text(tariff, sub_r, sub_d)
    fast_s = time.perf_counter() - t
    assert fast == text, "the fast rated.csv path differs from rate() + rated_csv_text()"
    print(f"fast rated.csv path (csv_fast): {len(sub_r) / fast_s / 1e3:.0f} k slots/s, identical CSV")
    t = time.perf_counter()
    full = rate_csv_text(tariff, readings, dispatches)
    full_s = time.perf_counter() - t
    print(f"fast rated.csv path, all {len(readings):,} slots: {full_s:.2f} s = "
          f"{len(readings) / full_s / 1e3:.0f} k slots/s ({len(full) / 1e6:.1f} MB)")
    print(f"core vs reference: {n / core / (len(sub_r) / ref_s):.0f}x")
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}"
    )


if __name__ == "__main__":
    main()
