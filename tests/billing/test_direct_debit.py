"""Table tests for the Direct Debit health check: the worked example, the seasonal fill, the
£5 and three-month limits, and the tracker's 3-month and 32-day limits."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from billing import BillingInputError, DdInput, check
from billing.direct_debit import next_april, payments_before
from rating.tariff import load_tariff, parse_tariff
from tests.billing.helpers import slot, standing

TODAY = date(2026, 9, 15)
YEAR_AGO = date(2025, 9, 15)
# A tariff with only a standing charge that matters: the worked example's arithmetic by hand.
FLAT = parse_tariff({"kind": "io-go", "standing_charge_p": "50",
                     "windows": {"off-peak": {"start": "23:30", "end": "05:30"}},
                     "rates": {"import": {"off-peak": "10", "smart-charge": "10", "peak": "20"},
                               "export": {"export": "15"}}}, "flat")  # fmt: skip


def days(first, n):
    return [first + timedelta(days=i) for i in range(n)]


def standing_year():
    return [standing(d, "50.00") for d in days(YEAR_AGO, 365)]


def dd(history=None, tariff=FLAT, **kw):
    args = {"today": TODAY, "balance_p": 0, "payment_p": 0, "target_weeks": Decimal(0)} | kw
    return check(standing_year() if history is None else history, tariff, DdInput(**args))


@pytest.mark.parametrize(("today", "april", "payments"), [
    (date(2026, 9, 15), date(2027, 4, 1), 6),  # October..March
    (date(2026, 3, 15), date(2026, 4, 1), 0),  # March: next month is April
    (date(2026, 4, 1), date(2027, 4, 1), 11),  # on 1 April: the next one
    (date(2026, 12, 31), date(2027, 4, 1), 3),
])  # fmt: skip
def test_next_april_and_the_payments_before_it(today, april, payments):
    assert next_april(today) == april
    assert payments_before(today, april) == payments


@pytest.mark.parametrize(("payment", "balance"), [(0, -50100), (1000, -56100)])
def test_the_worked_example_september_minus_600_in_april_is_plus_50_a_month(payment, balance):
    # 365 x 50 p standing = 18,250 p a year; 198 days to 1 April cost 9,900 p; six payments.
    doc = dd(balance_p=balance, payment_p=payment)
    assert doc["annual_cost_p"] == 18250 and doc["base_payment_p"] == 1521
    assert doc["next_april"] == "2027-04-01" and doc["forecast_to_april_p"] == 9900
    assert doc["projected_april_balance_p"] == -60000
    assert doc["target_april_balance_p"] == 0
    assert doc["adjustment_p"] == 5000
    assert doc["recommended_payment_p"] == 1521 + 5000
    assert doc["change"] == "increase"


def test_one_week_of_credit_is_the_default_target():
    doc = check(standing_year(), FLAT, DdInput(TODAY, 0, 0))
    assert doc["target_april_balance_p"] == 350  # 18,250 x 7 / 365


def test_a_full_year_of_history_is_taken_as_it_is():
    history = standing_year() + [slot(d, 30, "20.00") for d in days(YEAR_AGO, 365)]
    assert dd(history)["annual_cost_p"] == 18250 + 365 * 20  # 1 kWh a day at the 20 p peak


def test_short_history_is_filled_with_the_seasonal_shape():
    # The same 1 kWh a day seen only in July (weight 8) or only in January (weight 12): a summer
    # month extrapolates to 50 % more than a winter one (winter uses 50 % more).
    july = [slot(d, 30, "20.00") for d in days(date(2026, 7, 1), 31)]
    january = [slot(d, 30, "20.00") for d in days(date(2026, 1, 1), 31)]
    summer = dd(july)["annual_cost_p"] - 18250
    winter = dd(january)["annual_cost_p"] - 18250
    assert (summer, winter) == (465 * 20, 310 * 20)  # 31 kWh x 120/8 and x 120/12


def test_export_is_a_credit_and_agile_bands_use_the_historys_own_price():
    history = [slot(d, 30, "15.00", band="agile") for d in days(YEAR_AGO, 365)]
    history += [slot(d, 24, "7.50", "export", "export", "0.50") for d in days(YEAR_AGO, 365)]
    agile = load_tariff("agile")
    doc = dd(history, agile)
    export_rate = agile.rate("export", "export")
    expected = 365 * 15 - Decimal("182.5") * export_rate + 365 * agile.standing_charge_p
    assert doc["annual_cost_p"] == round(expected)


@pytest.mark.parametrize(("balance", "adjustment", "change"), [
    (-5214, 499, "none"),      # 499 p a month more: under £5
    (-5226, 500, "increase"),  # exactly £5
    (6762, -499, "none"),
    (6774, -500, "decrease"),
])  # fmt: skip
def test_no_change_under_five_pounds_a_month(balance, adjustment, change):
    doc = dd(balance_p=balance, payment_p=1521)  # paying the base already
    assert (doc["adjustment_p"], doc["change"]) == (adjustment, change)
    assert doc["recommended_payment_p"] == 1521 + adjustment


@pytest.mark.parametrize(("last_change", "change"), [
    (date(2026, 6, 16), "none"),      # less than three months ago
    (date(2026, 6, 15), "increase"),  # three months ago exactly
    (None, "increase"),
])  # fmt: skip
def test_no_change_within_three_months_of_the_last(last_change, change):
    doc = dd(balance_p=-50100, last_change=last_change)
    assert doc["change"] == change
    assert ("less than 3 months" in doc["change_reason"]) == (change == "none")


@pytest.mark.parametrize(("supply_start", "last_reading", "tracker"), [
    (date(2026, 6, 15), date(2026, 8, 14), "too-little"),   # 3 months; reading 32 days old
    (date(2026, 6, 16), date(2026, 9, 14), "unavailable"),  # under 3 months of supply
    (date(2025, 1, 1), date(2026, 8, 13), "unavailable"),   # reading 33 days old
])  # fmt: skip
def test_tracker_limits(supply_start, last_reading, tracker):
    doc = dd(balance_p=-50100, supply_start=supply_start, last_reading=last_reading)
    assert doc["tracker"] == tracker
    if tracker == "unavailable":
        assert "3 months" in doc["tracker_reason"] or "32 days" in doc["tracker_reason"]


@pytest.mark.parametrize(("balance", "tracker"), [(-50100, "too-little"), (-5214, "on-track"),
                                                  (6774, "too-much")])  # fmt: skip
def test_tracker_status(balance, tracker):
    doc = dd(balance_p=balance, payment_p=1521, last_change=date(2026, 9, 1))
    assert doc["tracker"] == tracker  # shown even when no change is suggested


def test_tracker_defaults_come_from_the_history():
    recent = [standing(d) for d in days(date(2026, 7, 1), 60)]  # supply from 1 July
    doc = dd(recent)
    assert doc["tracker"] == "unavailable" and "since 2026-07-01" in doc["tracker_reason"]


@pytest.mark.parametrize(("kw", "field"), [
    ({"payment_p": -1}, "payment_p"),
    ({"target_weeks": Decimal(-1)}, "target_weeks"),
])  # fmt: skip
def test_bad_input(kw, field):
    with pytest.raises(BillingInputError) as e:
        dd(**kw)
    assert e.value.field == field


def test_no_history_in_the_year_is_refused():
    with pytest.raises(BillingInputError) as e:
        dd([standing(date(2024, 1, 1))])
    assert e.value.field == "rated"


def test_history_for_several_meters_is_refused():
    with pytest.raises(BillingInputError) as e:
        dd([*standing_year(), standing(date(2026, 1, 1), meter="OTHER")])
    assert e.value.field == "rated" and "several meters" in e.value.reason
