"""Billing benchmark (run by hand): a meter-year of rated slots billed, re-billed and checked.

    .venv/bin/python bench/billing.py [--meters 20] [--store] [--postgres URL]

Pure path: ``billing.make_bill`` (a first bill and a full re-bill) and ``billing.check`` (the
Direct Debit check) on a year of half-hours (17,520 import lines plus 365 standing lines per
meter), against a reference measured in the same run: the plain exact sum of the lines'
costs (the least any bill must do). ``--store``: a bill made and stored through the daemon's
BillStore on SQLite (and PostgreSQL with ``--postgres``): read the latest rated versions and the
billed lines, compute, write the bill and its 17,885 billed lines in one transaction.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import platform
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np

import rating
from billing import BillOptions, DdInput, check, make_bill, select
from rating.model import RatedSlot

START = datetime(2025, 1, 1, tzinfo=UTC)
FROM, TO, BILL_DATE = date(2025, 1, 1), date(2026, 1, 1), date(2026, 1, 2)


def meter_year(meter: str, seed: int) -> list[RatedSlot]:
    rng = np.random.default_rng(seed)
    kwh = rng.gamma(2.0, 0.15, 17520).round(2)
    readings = [rating.Reading(meter, START + timedelta(minutes=30 * i), Decimal(str(k)))
                for i, k in enumerate(kwh.tolist())]  # fmt: skip
    return select(rating.rate(rating.load_tariff("io-go"), readings), FROM, TO)


def timed(fn, repeat: int = 1):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - t0) / repeat, out


def pure(meters: int) -> None:
    years = [meter_year(f"M{m:04d}", m) for m in range(meters)]
    lines = sum(len(y) for y in years)
    rebilled = [[s.__class__(s.meter, s.start, s.settlement_date, s.settlement_period, s.register,
                             s.kwh, s.band, s.unit_rate_p, s.cost_p + Decimal("0.01"))
                 for s in y] for y in years]  # fmt: skip
    ref, _ = timed(lambda: [sum((s.cost_p for s in y), Decimal(0)) for y in years])
    first, _ = timed(lambda: [make_bill(FROM, TO, BILL_DATE, y) for y in years])
    again, bills = timed(lambda: [make_bill(FROM, TO, BILL_DATE, r, y, BillOptions())
                                  for y, r in zip(years, rebilled, strict=True)])  # fmt: skip
    tariff = rating.load_tariff("io-go")
    dd, _ = timed(lambda: [check(y, tariff, DdInput(date(2026, 1, 1), 0, 5000)) for y in years])
    print(f"{meters} meter-years, {lines:,} rated lines")
    print(f"reference (exact sum of costs): {lines / ref / 1e3:,.0f} k lines/s ({ref:.3f} s)")
    print(f"first bill:  {lines / first / 1e3:,.0f} k lines/s ({first:.3f} s), "
          f"{first / ref:.1f}x the reference")  # fmt: skip
    print(f"full re-bill (current + billed): {2 * lines / again / 1e3:,.0f} k lines/s "
          f"({again:.3f} s); difference {bills[0].difference_p} p on the first meter")
    print(f"DD check: {dd / meters * 1e3:.1f} ms a meter-year ({lines / dd / 1e3:,.0f} k lines/s)")


async def store(target: str) -> None:
    from billing import make_bill as mk
    from flexd.storage import RatedRow, Storage
    from flexd.storage.bills import BillInputs, BillStore

    year = meter_year("M1", 1)
    rows = [RatedRow(s.meter, s.start, s.register, 0, s.settlement_date.isoformat(),
                     s.settlement_period, s.kwh, s.band, s.unit_rate_p, s.cost_p, START, "bench")
            for s in year]  # fmt: skip
    st = await Storage.open(target)
    try:
        await st.add_rated(rows)
        bills = BillStore(st.driver)

        def compose(inputs: BillInputs) -> dict:  # type: ignore[type-arg]
            cur = [RatedSlot(r.meter, r.start, date.fromisoformat(r.settlement_date),
                             r.settlement_period, r.register, r.kwh, r.band, r.unit_rate_p,
                             r.cost_p) for r in inputs.current]  # fmt: skip
            return mk(FROM, TO, BILL_DATE, cur).to_json()

        hi = datetime(2026, 1, 1, tzinfo=UTC)
        t0 = time.perf_counter()
        await bills.create("M1", START, hi, BILL_DATE, hi, compose)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        await bills.create("M1", START, hi, BILL_DATE, hi, compose)
        again = time.perf_counter() - t0
        print(f"{st.dialect}: bill a stored meter-year ({len(rows):,} lines): first "
              f"{first:.2f} s, re-bill {again:.2f} s")  # fmt: skip
    finally:
        await st.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--meters", type=int, default=20)
    ap.add_argument("--store", action="store_true")
    ap.add_argument("--postgres", help="a postgresql:// URL of an empty database")
    a = ap.parse_args()
    print(f"{platform.machine()}, Python {platform.python_version()}")
    pure(a.meters)
    if a.store:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(store(str(Path(tmp) / "bench.sqlite")))
    if a.postgres:
        asyncio.run(store(a.postgres))


if __name__ == "__main__":
    main()
