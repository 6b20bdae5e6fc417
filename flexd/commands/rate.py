"""``flexd rate``: rate half-hourly readings for billing (the rated.csv contract)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
from rating.io import write_rated_csv_text


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rate", help="rate half-hourly readings into rated.csv")
    p.add_argument("--tariff", required=True, help="tariff name (config/tariffs/NAME.toml) or path")
    p.add_argument("--readings", required=True, type=Path, help="readings.csv")
    p.add_argument("--dispatches", type=Path, help="dispatches.csv")
    p.add_argument("--prices", type=Path, help="prices.json (Agile), Octopus REST shape")
    p.add_argument("--out", required=True, type=Path, help="output file")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        tariff = load_tariff(args.tariff)
        readings = read_readings(args.readings)
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
    except RatingInputError as exc:
        print(f"flexd rate: {exc}", file=sys.stderr)
        return 2
    print(f"rated {rows} rows into {args.out}", file=sys.stderr)
    return 0
