"""A bill, and a re-bill, with the 12-month backbilling rule.

The supplier may not seek additional payment for energy used more than 12 months before the
bill when the delay is its fault (Ofgem's backbilling rule, summarised in domain.md): a
never-billed slot that old, or a re-bill that now charges more for it, is written off. A re-bill
that charges the same or less always passes through. If the customer prevented a reading the
rule does not apply. The old increase may still be charged as long as it does not put the
customer into debt, or further into debt: with a balance, it is billable up to the credit left
after the rest of the bill, and only the rest of it is written off.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from billing.model import (
    ACCOUNT_TYPES,
    Bill,
    BillingInputError,
    BillOptions,
    add_months,
    pence,
    signed_cost,
)
from billing.statement import bill_lines, check_period, documents, one_meter
from rating.model import RatedSlot

BACKBILLING_MONTHS = 12


def backbilling_cutoff(bill_date: date) -> date:
    """Slots settled before this date are more than 12 months before the bill."""
    return add_months(bill_date, -BACKBILLING_MONTHS)


def old_difference(
    current: Sequence[RatedSlot], billed: Sequence[RatedSlot], cutoff: date
) -> Decimal:
    """The net change, exactly (0.01 p), on slots settled before ``cutoff``: current minus
    billed per (start, register); a slot never billed counts in full."""
    total = Decimal(0)
    for s in current:
        if s.settlement_date < cutoff:
            total += signed_cost(s)
    for s in billed:
        if s.settlement_date < cutoff:
            total -= signed_cost(s)
    return total


def written_off(old_difference_p: int, difference_p: int, options: BillOptions) -> int:
    """How much of the old increase is not charged (see the module's rule)."""
    if old_difference_p <= 0 or options.customer_caused:
        return 0
    if options.balance_p is None:
        return old_difference_p
    credit_left = options.balance_p - (difference_p - old_difference_p)
    billable_old = min(old_difference_p, max(0, credit_left))
    return old_difference_p - billable_old


def make_bill(
    period_from: date,
    period_to: date,
    bill_date: date,
    current: Sequence[RatedSlot],
    billed: Sequence[RatedSlot] | None = None,
    options: BillOptions | None = None,
) -> Bill:
    """The bill for ``current`` (the slots already selected for it). ``billed`` (the lines
    billed before for those slots) makes it a re-bill. Without it every slot counts as never
    billed, so a first bill that reaches back more than 12 months has the rule applied too."""
    options = options or BillOptions()
    check_period(period_from, period_to, bill_date)
    if options.account_type not in ACCOUNT_TYPES:
        raise BillingInputError("account_type", "must be domestic or business")
    meter = one_meter(current, "rated")
    before = billed or ()
    billed_meter = one_meter(before, "billed")
    if meter is None:
        raise BillingInputError("rated", f"no rated lines with a settlement date in "
                                         f"{period_from}..{period_to} (to exclusive)")  # fmt: skip
    if billed_meter is not None and billed_meter != meter:
        raise BillingInputError("billed", f"lines for meter {billed_meter}, not {meter}")
    lines = bill_lines(current)
    charges_p = sum(line.cost_p for line in lines)
    previously_billed_p = sum(line.cost_p for line in bill_lines(before))
    difference_p = charges_p - previously_billed_p
    old_p = pence(old_difference(current, before, backbilling_cutoff(bill_date)))
    off_p = written_off(old_p, difference_p, options)
    rebill = billed is not None
    return Bill(
        meter=meter, period_from=period_from, period_to=period_to, bill_date=bill_date,
        account_type=options.account_type, lines=lines, charges_p=charges_p, rebill=rebill,
        previously_billed_p=previously_billed_p, difference_p=difference_p,
        old_difference_p=old_p, written_off_p=off_p, billable_p=difference_p - off_p,
        documents=documents(options.account_type, lines, rebill, previously_billed_p, off_p),
    )  # fmt: skip
