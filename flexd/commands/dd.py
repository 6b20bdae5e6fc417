"""``flexd dd``: the Direct Debit health check for one meter's rated history (issue 17)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from billing import BillingInputError, DdInput, check, parse_date, parse_pence, parse_weeks
from core.errors import FieldError
from flexd.commands.args import one_line_errors
from rating.io import read_rated, write_atomic
from rating.tariff import load_tariff

PROG = "flexd dd"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dd", help="Direct Debit health check from a rated history")
    p.add_argument("--rated", required=True, type=Path, help="rated.csv: the meter's history")
    p.add_argument("--tariff", required=True, help="tariff name (config/tariffs/NAME.toml) or path")
    p.add_argument("--today", required=True, help="the check's date (YYYY-MM-DD)")
    p.add_argument("--balance-p", required=True, help="the balance in pence, credit positive")
    p.add_argument("--payment-p", required=True, help="the monthly payment in pence")
    p.add_argument("--last-change", help="the date the payment last changed")
    p.add_argument("--supply-start", help="the supply's first date (default: the history's)")
    p.add_argument("--last-reading", help="the latest meter reading's date (default: the "
                                          "history's last settlement date)")  # fmt: skip
    p.add_argument("--target-weeks", default="1", help="weeks of credit healthy on 1 April")
    p.add_argument("--out", required=True, type=Path, help="dd.json")
    one_line_errors(p, PROG)
    p.set_defaults(run=run)


def _date_or_none(text: str | None, flag: str) -> date | None:
    return None if text is None else parse_date(text, flag)


def run(args: argparse.Namespace) -> int:
    try:
        weeks = parse_weeks(args.target_weeks, "--target-weeks")
        inp = DdInput(
            today=parse_date(args.today, "--today"),
            balance_p=parse_pence(args.balance_p, "--balance-p"),
            payment_p=parse_pence(args.payment_p, "--payment-p", minimum=0),
            last_change=_date_or_none(args.last_change, "--last-change"),
            supply_start=_date_or_none(args.supply_start, "--supply-start"),
            last_reading=_date_or_none(args.last_reading, "--last-reading"),
            target_weeks=weeks,
        )
        tariff = load_tariff(args.tariff)
        doc = check(read_rated(args.rated), tariff, inp)
    except BillingInputError as exc:
        where = args.rated if exc.field == "rated" else None
        print(f"{PROG}: {where}: {exc.reason}" if where else f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except FieldError as exc:  # a rated.csv row or the tariff file
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    write_atomic(args.out, json.dumps(doc, indent=1) + "\n")
    print(f"recommended {doc['recommended_payment_p']} p a month ({doc['change']}), tracker "
          f"{doc['tracker']} into {args.out}", file=sys.stderr)  # fmt: skip
    return 0
