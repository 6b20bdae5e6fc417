"""Table tests for each billing rule of issue 17: periods, lines, the backbilling rule, the
balance cap and the documents."""

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from billing import BillingInputError, BillOptions, make_bill, pence, select
from billing.rebill import backbilling_cutoff
from rating import Reading, load_tariff, rate
from tests.billing.helpers import M, slot, standing
from tests.rating.helpers import local

BILL_DATE = date(2026, 12, 1)
OLD = "2025-10-15"  # more than 12 months before BILL_DATE
RECENT = "2026-11-10"


def bill(current, billed=None, bill_date=BILL_DATE, **opts):
    return make_bill(date(2025, 10, 1), date(2026, 12, 1), bill_date, current, billed,
                     BillOptions(**opts))  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), [
    ("0.50", 0), ("1.50", 2), ("2.50", 2), ("-0.50", 0), ("-1.50", -2), ("2.49", 2), ("2.51", 3),
])  # fmt: skip
def test_pence_rounds_half_to_even(value, expected):
    assert pence(Decimal(value)) == expected
    assert pence(Fraction(Decimal(value))) == expected


@pytest.mark.parametrize(("bill_date", "cutoff"), [
    (date(2026, 12, 1), date(2025, 12, 1)),
    (date(2028, 2, 29), date(2027, 2, 28)),  # a leap day looks back to the 28th
    (date(2026, 3, 31), date(2025, 3, 31)),
])  # fmt: skip
def test_backbilling_cutoff_is_twelve_calendar_months(bill_date, cutoff):
    assert backbilling_cutoff(bill_date) == cutoff


def test_lines_per_register_and_band_rounded_once_per_line():
    # Three 0.50 p peak lines are 1.50 p exactly: one rounding gives 2 p, not 3 x 0 p = 0 p.
    current = [slot(RECENT, p, "0.50") for p in (1, 2, 3)] + [
        slot(RECENT, 20, "7.50", register="export", band="export"), standing(RECENT, "53.35"),
    ]  # fmt: skip
    b = bill(current)
    assert [(ln.register, ln.band, str(ln.kwh), ln.cost_p) for ln in b.lines] == [
        ("import", "peak", "3.00", 2), ("export", "export", "1.00", -8),
        ("standing", "standing", "0.00", 53),
    ]  # fmt: skip
    assert b.charges_p == 2 - 8 + 53 == b.billable_p
    assert (b.rebill, b.written_off_p) == (False, 0)


def test_a_recent_first_bill_has_no_write_off():
    b = bill([slot(RECENT, 1, "100.00")])
    assert (b.charges_p, b.old_difference_p, b.written_off_p, b.billable_p) == (100, 0, 0, 100)


def test_never_billed_slots_over_a_year_old_are_written_off():
    current = [slot(OLD, 1, "300.00"), slot(RECENT, 1, "100.00")]
    first = bill(current)  # never billed at all: the old slot counts in full
    assert (first.old_difference_p, first.written_off_p, first.billable_p) == (300, 300, 100)
    # A re-bill whose billed.csv lacks the old slot: absent means never billed.
    again = bill(current, billed=[slot(RECENT, 1, "100.00")])
    assert (again.rebill, again.previously_billed_p, again.difference_p) == (True, 100, 300)
    assert (again.old_difference_p, again.written_off_p, again.billable_p) == (300, 300, 0)


def test_exactly_twelve_months_before_is_still_billable():
    b = bill([slot("2025-12-01", 1, "300.00")])  # settled on the cutoff day: not more than 12 months
    assert (b.old_difference_p, b.written_off_p, b.billable_p) == (0, 0, 300)
    b = bill([slot("2025-11-30", 1, "300.00")])
    assert (b.old_difference_p, b.written_off_p, b.billable_p) == (300, 300, 0)


def test_a_higher_rebill_of_old_slots_is_written_off_and_recent_changes_pass():
    billed = [slot(OLD, 1, "100.00"), slot(RECENT, 1, "100.00")]
    current = [slot(OLD, 1, "250.00"), slot(RECENT, 1, "130.00")]
    b = bill(current, billed)
    assert (b.previously_billed_p, b.charges_p, b.difference_p) == (200, 380, 180)
    assert (b.old_difference_p, b.written_off_p, b.billable_p) == (150, 150, 30)


def test_a_lower_rebill_always_passes_through():
    billed = [slot(OLD, 1, "250.00"), slot(RECENT, 1, "100.00")]
    current = [slot(OLD, 1, "100.00"), slot(RECENT, 1, "100.00")]
    b = bill(current, billed)
    assert (b.difference_p, b.old_difference_p, b.written_off_p, b.billable_p) == (
        -150, -150, 0, -150)


def test_old_changes_net_out_before_the_rule():
    # One old slot up 100, another down 40: the net old increase of 60 is written off.
    billed = [slot(OLD, 1, "100.00"), slot(OLD, 2, "100.00")]
    current = [slot(OLD, 1, "200.00"), slot(OLD, 2, "60.00")]
    b = bill(current, billed)
    assert (b.old_difference_p, b.written_off_p, b.billable_p) == (60, 60, 0)


def test_customer_caused_delay_bills_the_old_increase():
    billed = [slot(OLD, 1, "100.00")]
    current = [slot(OLD, 1, "250.00")]
    assert bill(current, billed).billable_p == 0
    b = bill(current, billed, customer_caused=True)
    assert (b.old_difference_p, b.written_off_p, b.billable_p) == (150, 0, 150)


@pytest.mark.parametrize(("balance", "written_off", "billable"), [
    (None, 150, 30),  # no balance given: the whole old increase is written off
    (1000, 0, 180),   # plenty of credit: the old increase is billable in full
    (100, 80, 100),   # 100 credit, 30 for the recent change leaves 70 for the old increase
    (30, 150, 30),    # the recent change uses all the credit
    (0, 150, 30),
    (-500, 150, 30),  # in debt already: nothing more of the old increase
    (180, 0, 180),    # exactly enough
])  # fmt: skip
def test_the_balance_caps_the_old_increase(balance, written_off, billable):
    billed = [slot(OLD, 1, "100.00"), slot(RECENT, 1, "100.00")]
    current = [slot(OLD, 1, "250.00"), slot(RECENT, 1, "130.00")]
    b = bill(current, billed, balance_p=balance)
    assert (b.written_off_p, b.billable_p) == (written_off, billable)


def test_a_domestic_statement_holds_charges_and_credits():
    current = [slot(RECENT, 1, "100.00"), slot(RECENT, 20, "40.00", "export", "export")]
    (doc,) = bill(current).documents
    assert doc.type == "statement"
    assert [i.amount_p for i in doc.items] == [100, -40]
    assert doc.total_p == 60


def test_business_charges_and_credits_go_on_separate_documents():
    current = [slot(RECENT, 1, "100.00"), slot(RECENT, 20, "40.00", "export", "export"),
               standing(RECENT, "50.00")]  # fmt: skip
    docs = bill(current, account_type="business").documents
    assert [(d.type, d.total_p) for d in docs] == [("invoice", 150), ("credit_note", 40)]
    invoice, credit = docs
    assert all(i.amount_p > 0 for i in invoice.items) and all(i.amount_p > 0 for i in credit.items)


def test_business_rebill_and_write_off():
    billed = [slot(OLD, 1, "100.00"), slot(RECENT, 1, "100.00")]
    current = [slot(OLD, 1, "250.00"), slot(RECENT, 1, "80.00")]
    b = bill(current, billed, account_type="business")
    # New charges invoiced; what was billed before and what is written off are credited.
    assert [(d.type, d.total_p) for d in b.documents] == [("invoice", 330), ("credit_note", 350)]
    assert b.documents[0].total_p - b.documents[1].total_p == b.billable_p == -20


def test_business_credit_only_and_nothing():
    b = bill([slot(RECENT, 20, "40.00", "export", "export")], account_type="business")
    assert [(d.type, d.total_p) for d in b.documents] == [("credit_note", 40)]
    b = bill([slot(RECENT, 1, "0.00")], account_type="business")
    assert [(d.type, d.total_p) for d in b.documents] == [("invoice", 0)]


def test_period_selects_by_settlement_date_across_the_spring_clock_change():
    # March 2026: BST from 29 March. The half-hours at 23:00Z and 23:30Z on 31 March are local
    # 1 April 00:00 and 00:30: April's, not March's; 29 March has 46 periods.
    tariff = load_tariff("io-go")
    start = local(2026, 3, 29, 0)
    readings = [Reading(M, start + timedelta(minutes=30 * i), Decimal("1"))
                for i in range(46 + 48 * 2 + 2)]  # fmt: skip
    slots = rate(tariff, readings)
    march = select(slots, date(2026, 3, 1), date(2026, 4, 1))
    assert max(s.start for s in march) == local(2026, 3, 31, 23, 30)
    assert sum(1 for s in march if s.register == "import") == 46 + 48 * 2
    b = make_bill(date(2026, 3, 1), date(2026, 4, 1), date(2026, 4, 2), march)
    assert sum(ln.kwh for ln in b.lines if ln.register == "import") == 46 + 96
    assert [ln.cost_p for ln in b.lines if ln.register == "standing"] == [pence(3 * tariff.standing_charge_p)]


def test_the_autumn_clock_change_day_bills_fifty_periods():
    tariff = load_tariff("io-go")
    start = local(2026, 10, 25, 0)
    slots = rate(tariff, [Reading(M, start + timedelta(minutes=30 * i), Decimal("0.10"))
                          for i in range(50)])  # fmt: skip
    b = make_bill(date(2026, 10, 25), date(2026, 10, 26), date(2026, 11, 1), slots)
    assert sum(ln.kwh for ln in b.lines if ln.register == "import") == Decimal("5.00")


@pytest.mark.parametrize(("start", "end", "bill_date", "field", "reason"), [
    (date(2026, 3, 1), date(2026, 2, 1), date(2026, 4, 1), "to", "before from"),
    (date(2026, 3, 1), date(2026, 3, 1), date(2026, 4, 1), "to", "empty"),
    (date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 20), "to", "overlaps the bill date"),
])  # fmt: skip
def test_bad_periods(start, end, bill_date, field, reason):
    with pytest.raises(BillingInputError) as e:
        make_bill(start, end, bill_date, [slot("2026-03-02")])
    assert e.value.field == field and reason in e.value.reason


@pytest.mark.parametrize(("current", "billed", "field", "reason"), [
    ([slot(RECENT), slot(RECENT, meter="OTHER")], None, "rated", "several meters"),
    ([slot(RECENT), slot(RECENT)], None, "rated", "overlapping lines"),
    ([], None, "rated", "no rated lines"),
    ([slot(RECENT)], [slot(RECENT, meter="OTHER")], "billed", "not " + M),
    ([slot(RECENT)], None, "account_type", "domestic or business"),
])  # fmt: skip
def test_bad_lines(current, billed, field, reason):
    opts = {"account_type": "personal"} if field == "account_type" else {}
    with pytest.raises(BillingInputError) as e:
        bill(current, billed, **opts)
    assert e.value.field == field and reason in e.value.reason
