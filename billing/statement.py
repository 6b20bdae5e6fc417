"""From rated lines to the lines of a bill, and from a bill's amounts to its documents.

Domestic customers get one statement (charges and credits together); business customers get an
invoice for the charges and a separate credit note for the credits, never on one document.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

from billing.model import (
    ACCOUNT_TYPES,
    BillingInputError,
    BillLine,
    Document,
    Item,
    pence,
    signed_cost,
)
from rating.model import RatedSlot

# Lines in this order: import, the car, export, then the standing charge.
REGISTER_ORDER = {"import": 0, "ev": 1, "export": 2, "standing": 3}


def select(slots: Iterable[RatedSlot], start: date, end: date) -> list[RatedSlot]:
    """The slots whose settlement date (a Europe/London date) is in [start, end)."""
    return [s for s in slots if start <= s.settlement_date < end]


def check_period(start: date, end: date, bill_date: date) -> None:
    """A bill covers whole local days that have ended by its date."""
    if end < start:
        raise BillingInputError("to", "is before from")
    if end == start:
        raise BillingInputError("to", "equals from: the period is empty (to is exclusive)")
    if end > bill_date:
        raise BillingInputError("to", f"the period overlaps the bill date {bill_date} (to must "
                                      "be on or before bill_date)")  # fmt: skip


def one_meter(slots: Sequence[RatedSlot], field: str) -> str | None:
    """The one meter these lines are for; several meters, or one slot twice, is an error."""
    meters = sorted({s.meter for s in slots})
    if len(meters) > 1:
        raise BillingInputError(field, f"lines for several meters ({', '.join(meters[:3])}); "
                                       "a bill is for one meter")  # fmt: skip
    seen: set[tuple[float, str]] = set()
    for s in slots:
        key = (s.start.timestamp(), s.register)
        if key in seen:
            raise BillingInputError(field, f"overlapping lines: {s.register} at "
                                           f"{s.start.isoformat()} twice")  # fmt: skip
        seen.add(key)
    return meters[0] if meters else None


def bill_lines(slots: Iterable[RatedSlot]) -> tuple[BillLine, ...]:
    """Per register and band: kWh and cost summed exactly, then the cost rounded once to the
    penny (half-even); export lines are credits (negative)."""
    kwh: dict[tuple[str, str], Decimal] = {}
    cost: dict[tuple[str, str], Decimal] = {}
    for s in slots:
        key = (s.register, s.band)
        kwh[key] = kwh.get(key, Decimal(0)) + s.kwh
        cost[key] = cost.get(key, Decimal(0)) + signed_cost(s)
    keys = sorted(kwh, key=lambda k: (REGISTER_ORDER.get(k[0], 9), k[0], k[1]))
    return tuple(BillLine(r, b, kwh[(r, b)], pence(cost[(r, b)])) for r, b in keys)


def _describe(line: BillLine) -> str:
    if line.register == "standing":
        return "standing charge"
    what = {"import": "electricity", "ev": "car charging", "export": "export credit"}
    return f"{what.get(line.register, line.register)}, {line.band} ({line.kwh} kWh)"


def documents(
    account_type: str, lines: Sequence[BillLine], rebill: bool, previously_billed_p: int,
    written_off_p: int,
) -> tuple[Document, ...]:  # fmt: skip
    """The items are the current lines, less what was billed before (a re-bill) and less what
    is written off; a statement's total is the billable amount. A business's charges (positive
    items) go on an invoice, its credits (negative items) on a credit note, each totalled."""
    if account_type not in ACCOUNT_TYPES:
        raise BillingInputError("account_type", "must be domestic or business")
    items = [Item(_describe(line), line.cost_p) for line in lines]
    if rebill:
        items.append(Item("previously billed for this period", -previously_billed_p))
    if written_off_p:
        items.append(Item("written off: energy used more than 12 months before this bill "
                          "(backbilling)", -written_off_p))  # fmt: skip
    if account_type == "domestic":
        return (Document("statement", sum(i.amount_p for i in items), tuple(items)),)
    charges = tuple(i for i in items if i.amount_p > 0)
    credits = tuple(Item(i.description, -i.amount_p) for i in items if i.amount_p < 0)
    out = []
    if charges or not credits:  # nothing at all still gets a (zero) invoice
        out.append(Document("invoice", sum(i.amount_p for i in charges), charges))
    if credits:
        out.append(Document("credit_note", sum(i.amount_p for i in credits), credits))
    return tuple(out)
