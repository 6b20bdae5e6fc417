"""``flexd bill``: a bill (or a re-bill) for one meter from rated.csv (issue 17's contract)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from billing import BillingInputError, BillOptions, make_bill, parse_date, parse_pence, select
from core.errors import FieldError
from flexd.commands.args import one_line_errors
from rating.io import read_rated, write_atomic

PROG = "flexd bill"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bill", help="bill one meter's rated slots (statement, invoice, re-bill)")
    p.add_argument("--rated", required=True, type=Path, help="rated.csv: the current rated lines")
    p.add_argument("--billed", type=Path, help="rated.csv lines billed before: makes a re-bill")
    p.add_argument("--from", dest="period_from", help="first local date (Europe/London)")
    p.add_argument("--to", dest="period_to", help="local date after the last one (exclusive)")
    p.add_argument("--bill-date", help="the bill's date (YYYY-MM-DD)")
    p.add_argument("--account-type", choices=("domestic", "business"), default="domestic")
    p.add_argument("--customer-caused", action="store_true",
                   help="the customer prevented a reading: backbilling does not apply")
    p.add_argument("--balance-p", help="the balance before this bill in pence, credit positive")
    p.add_argument("--out", required=True, type=Path, help="bill.json")
    one_line_errors(p, PROG)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        for flag, value in (("--from", args.period_from), ("--to", args.period_to),
                            ("--bill-date", args.bill_date)):  # fmt: skip
            if value is None:
                raise BillingInputError(flag, "is required (a period is --from and --to)")
        start = parse_date(args.period_from, "--from")
        end = parse_date(args.period_to, "--to")
        bill_date = parse_date(args.bill_date, "--bill-date")
        balance = None if args.balance_p is None else parse_pence(args.balance_p, "--balance-p")
        current = select(read_rated(args.rated), start, end)
        billed = select(read_rated(args.billed), start, end) if args.billed else None
        bill = make_bill(start, end, bill_date, current, billed,
                         BillOptions(args.account_type, args.customer_caused, balance))  # fmt: skip
    except BillingInputError as exc:
        where = {"rated": args.rated, "billed": args.billed}.get(exc.field or "")
        print(f"{PROG}: {where}: {exc.reason}" if where else f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except FieldError as exc:  # a rated.csv row, naming file:line
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    write_atomic(args.out, json.dumps(bill.to_json(), indent=1) + "\n")
    print(f"{bill.meter}: charges {bill.charges_p} p, billable {bill.billable_p} p, written off "
          f"{bill.written_off_p} p into {args.out}", file=sys.stderr)  # fmt: skip
    return 0
