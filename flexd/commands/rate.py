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
    write_rated_csv,
    write_rated_json,
)


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
        slots = rate(tariff, readings, dispatches, prices)
        if args.format == "json":
            write_rated_json(slots, args.out)
        else:
            write_rated_csv(slots, args.out)
    except RatingInputError as exc:
        print(f"flexd rate: {exc}", file=sys.stderr)
        return 2
    print(f"rated {len(slots)} rows into {args.out}", file=sys.stderr)
    return 0
