"""``flexd rate``: rate half-hourly readings for billing (the rated.csv contract)."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path

from core.clock import SystemClock
from core.timegrid import half_hour_start
from rating import (
    RatingInputError,
    load_tariff,
    rate,
    read_dispatches,
    read_prices,
    read_readings,
    write_rated_json,
)
from rating.csv_fast import rate_csv_text
from rating.io import (
    DEFAULT_MAX_KWH,
    Reject,
    reading_limits,
    rejects_csv_text,
    write_rated_csv_text,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rate", help="rate half-hourly readings into rated.csv")
    p.add_argument("--tariff", required=True, help="tariff name (config/tariffs/NAME.toml) or path")
    p.add_argument("--readings", required=True, type=Path, help="readings.csv")
    p.add_argument("--dispatches", type=Path, help="dispatches.csv")
    p.add_argument("--prices", type=Path, help="prices.json (Agile), Octopus REST shape")
    p.add_argument("--out", required=True, type=Path, help="output file")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--max-kwh", type=Decimal, default=DEFAULT_MAX_KWH,
                   help="refuse a reading above this many kWh per half-hour (default 30)")
    # Off by default here (the API's window is 24 months): billing re-rates old files on purpose.
    p.add_argument("--window-months", type=int, default=0,
                   help="refuse readings older than this many months (default 0: no limit)")
    p.add_argument("--rejects", type=Path,
                   help="write refused readings here (with the reason) and rate the rest")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.max_kwh.is_finite() or args.max_kwh <= 0 or args.window_months < 0:
        print("flexd rate: --max-kwh must be > 0 and --window-months >= 0", file=sys.stderr)
        return 2
    # The CLI is an edge: it reads the wall clock once, for "no reading in the future".
    bounds = reading_limits(args.max_kwh, args.window_months, half_hour_start(SystemClock().now()))
    rejects: list[Reject] | None = [] if args.rejects else None
    try:
        tariff = load_tariff(args.tariff)
        readings = read_readings(args.readings, bounds, rejects)
        dispatches = read_dispatches(args.dispatches) if args.dispatches else []
        prices = read_prices(args.prices) if args.prices else None
        if args.format == "json":
            slots = rate(tariff, readings, dispatches, prices)
            write_rated_json(slots, args.out)
            rows = len(slots)
        else:
            # Straight from the core's arrays: the same file as rate() + rated_csv_text().
            text = rate_csv_text(tariff, readings, dispatches, prices)
            write_rated_csv_text(text, args.out)
            rows = text.count("\n") - 1
        if rejects is not None:
            write_rated_csv_text(rejects_csv_text(rejects), args.rejects)
    except RatingInputError as exc:
        print(f"flexd rate: {exc}", file=sys.stderr)
        return 2
    refused = f"; {len(rejects)} refused into {args.rejects}" if rejects is not None else ""
    print(f"rated {rows} rows into {args.out}{refused}", file=sys.stderr)
    return 0
