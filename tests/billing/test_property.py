"""Hypothesis: a bill's totals are the sums of the rated lines, whatever the lines.

Each line of the bill is its rated lines' exact sum rounded once (half-even), the charges are
the sum of those lines, and the documents add up to the billable amount."""

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing import BillOptions, make_bill, pence
from billing.model import signed_cost
from tests.billing.helpers import slot

START = date(2025, 6, 1)
END = date(2026, 12, 1)

BANDS = {"import": ("off-peak", "peak", "smart-charge"), "ev": ("off-peak", "peak"),
         "export": ("export",), "standing": ("standing",)}  # fmt: skip


@st.composite
def rated_lines(draw, max_size=40):
    keys = draw(st.lists(
        st.tuples(st.integers(0, (END - START).days - 1), st.integers(1, 48),
                  st.sampled_from(tuple(BANDS))),
        max_size=max_size, unique=True,
    ))  # fmt: skip
    out = []
    for day, period, register in keys:
        band = draw(st.sampled_from(BANDS[register]))
        cost = Decimal(draw(st.integers(0, 100_000))).scaleb(-2)
        kwh = Decimal(draw(st.integers(0, 3000))).scaleb(-2)
        out.append(slot(START + timedelta(days=day), period, str(cost), register, band, str(kwh)))
    return out


def _exact_by_line(slots):
    sums: dict[tuple[str, str], Decimal] = {}
    for s in slots:
        sums[(s.register, s.band)] = sums.get((s.register, s.band), Decimal(0)) + signed_cost(s)
    return sums


@settings(max_examples=300, deadline=None)
@given(rated_lines(), st.none() | rated_lines(), st.sampled_from(("domestic", "business")),
       st.booleans(), st.none() | st.integers(-100_000, 100_000))  # fmt: skip
def test_bill_totals_are_the_sums_of_rated_lines(current, billed, account, caused, balance):
    if not current:
        current = [slot(START, 1)]
    b = make_bill(START, END, END, current, billed, BillOptions(account, caused, balance))
    exact = _exact_by_line(current)
    assert {(ln.register, ln.band): ln.cost_p for ln in b.lines} == {
        k: pence(v) for k, v in exact.items()}
    for ln in b.lines:
        assert ln.kwh == sum(s.kwh for s in current if (s.register, s.band) == (ln.register, ln.band))
    assert b.charges_p == sum(ln.cost_p for ln in b.lines)
    # One rounding per line: the bill is within half a penny a line of the exact sum.
    assert abs(b.charges_p - sum(exact.values())) <= Decimal("0.5") * len(b.lines)
    before = sum(pence(v) for v in _exact_by_line(billed or []).values())
    assert b.previously_billed_p == before
    assert b.difference_p == b.charges_p - before
    assert b.billable_p == b.difference_p - b.written_off_p
    assert 0 <= b.written_off_p <= max(b.old_difference_p, 0)
    if caused or b.old_difference_p <= 0:
        assert b.written_off_p == 0
    if account == "domestic":
        assert [d.type for d in b.documents] == ["statement"]
        assert b.documents[0].total_p == b.billable_p
        assert sum(i.amount_p for i in b.documents[0].items) == b.billable_p
    else:
        totals = {d.type: d.total_p for d in b.documents}
        assert set(totals) <= {"invoice", "credit_note"} and totals
        assert totals.get("invoice", 0) - totals.get("credit_note", 0) == b.billable_p
        for d in b.documents:
            assert d.total_p == sum(i.amount_p for i in d.items)
            assert all(i.amount_p > 0 for i in d.items)


@settings(max_examples=200, deadline=None)
@given(rated_lines())
def test_whole_pence_lines_sum_exactly(current):
    # Where every rated cost is whole pence, rounding changes nothing: the bill is the exact sum.
    current = [s.__class__(s.meter, s.start, s.settlement_date, s.settlement_period, s.register,
                           s.kwh, s.band, s.unit_rate_p, s.cost_p.to_integral_value())
               for s in current] or [slot(START, 1)]  # fmt: skip
    b = make_bill(START, END, END, current)
    assert b.charges_p == sum(signed_cost(s) for s in current)
