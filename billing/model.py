"""The values billing works on: money in whole pence, bill lines, documents, bills, input errors.

Money on a bill is an ``int`` of pence. Rated lines carry their cost to 0.01 p (rating rounds
each line once, half-even); billing sums those exactly (``Decimal``) and rounds once per line of
the bill, half-even, to the penny. Every total on a bill is a sum of those integers.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from core.errors import FieldError
from rating.model import RatedSlot

ACCOUNT_TYPES = ("domestic", "business")


class BillingInputError(FieldError):
    """Bad billing input: the field (a CLI flag, a JSON key or a file) and the reason."""


def pence(value: Decimal | Fraction | int) -> int:
    """Whole pence, rounded half to even (the supplier's rounding; domain.md)."""
    if isinstance(value, Fraction):
        q, r = divmod(value.numerator, value.denominator)
        twice = 2 * r
        return q + (twice > value.denominator or (twice == value.denominator and q % 2 == 1))
    return int(Decimal(value).to_integral_value(rounding=ROUND_HALF_EVEN))


def signed_cost(slot: RatedSlot) -> Decimal:
    """What the line adds to the customer's charges: export earns a credit, so its (positive)
    rated cost counts negative."""
    return -slot.cost_p if slot.register == "export" else slot.cost_p


def add_months(d: date, months: int) -> date:
    """``d`` moved by whole calendar months, the day clamped to the month's length (a bill
    dated 29 Feb 2028 looks back to 28 Feb 2027)."""
    m = d.year * 12 + d.month - 1 + months
    year, month = divmod(m, 12)
    month += 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def parse_date(text: Any, field: str) -> date:
    """A local calendar date ``YYYY-MM-DD`` (Europe/London)."""
    if not isinstance(text, str) or len(text) != 10:
        raise BillingInputError(field, "must be a date YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BillingInputError(field, f"{text!r} is not a date YYYY-MM-DD") from None
    # As readings (rating.io): half-hourly settlement began in 1990; nothing after 2099.
    if not 1990 <= day.year <= 2099:
        raise BillingInputError(field, f"{text} is outside 1990..2099")
    return day


def parse_pence(value: Any, field: str, *, minimum: int | None = None) -> int:
    """Whole pence from an int or a string of digits (a bool or a fraction is refused)."""
    if isinstance(value, bool):
        raise BillingInputError(field, "must be whole pence (an integer)")
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not digits.isascii() or not digits.isdigit() or len(digits) > 15:
            raise BillingInputError(field, f"{value!r} is not whole pence (an integer)")
        value = int(text)
    if not isinstance(value, int):
        raise BillingInputError(field, "must be whole pence (an integer)")
    if abs(value) >= 10**15:
        raise BillingInputError(field, "is not a plausible amount")
    if minimum is not None and value < minimum:
        raise BillingInputError(field, f"must be >= {minimum}")
    return value


def parse_weeks(text: str, field: str) -> Decimal:
    """Weeks of credit: a number within 0..52."""
    try:
        value = Decimal(text) if len(text) <= 20 else Decimal("NaN")
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 <= value <= 52:
        raise BillingInputError(field, "must be a number within 0..52")
    return value


@dataclass(frozen=True, slots=True)
class BillLine:
    """One line of a bill: a register and band's summed kWh and cost (the standing charge is
    register and band ``standing``)."""

    register: str
    band: str
    kwh: Decimal
    cost_p: int

    def to_json(self) -> dict[str, Any]:
        return {"register": self.register, "band": self.band, "kwh": str(self.kwh),
                "cost_p": self.cost_p}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Item:
    description: str
    amount_p: int

    def to_json(self) -> dict[str, Any]:
        return {"description": self.description, "amount_p": self.amount_p}


@dataclass(frozen=True, slots=True)
class Document:
    """A statement (signed: positive, the customer owes), an invoice (charges) or a credit note
    (credits, shown as positive amounts credited)."""

    type: str  # statement | invoice | credit_note
    total_p: int
    items: tuple[Item, ...]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "total_p": self.total_p,
                "items": [i.to_json() for i in self.items]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BillOptions:
    account_type: str = "domestic"
    customer_caused: bool = False  # the customer prevented a reading: backbilling does not apply
    balance_p: int | None = None  # the balance before this bill, credit positive


@dataclass(frozen=True, slots=True)
class Bill:
    meter: str
    period_from: date
    period_to: date  # exclusive
    bill_date: date
    account_type: str
    lines: tuple[BillLine, ...]
    charges_p: int
    rebill: bool
    previously_billed_p: int
    difference_p: int
    old_difference_p: int
    written_off_p: int
    billable_p: int
    documents: tuple[Document, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "meter": self.meter,
            "from": self.period_from.isoformat(),
            "to": self.period_to.isoformat(),
            "bill_date": self.bill_date.isoformat(),
            "account_type": self.account_type,
            "lines": [line.to_json() for line in self.lines],
            "charges_p": self.charges_p,
            "rebill": self.rebill,
            "previously_billed_p": self.previously_billed_p,
            "difference_p": self.difference_p,
            "old_difference_p": self.old_difference_p,
            "written_off_p": self.written_off_p,
            "billable_p": self.billable_p,
            "documents": [d.to_json() for d in self.documents],
        }
