"""The Direct Debit health check: the forecast annual cost, the base payment, the balance
projected for the coming 1 April, and the suggested change (the supplier's rules, issue 17).

- Forecast: a year's energy per register and band at the tariff's current rates, plus the daily
  standing charge. History shorter than a year is filled with the seasonal shape (about 50 % more
  energy in winter than in summer: ``MONTH_WEIGHT``).
- Base payment: the forecast / 12. Projected April balance: the balance, plus one payment per
  calendar month from next month up to and including March, less the forecast cost of the days
  from today to 31 March. Healthy: ``target_weeks`` of the forecast's cost in credit.
- Adjustment: (healthy - projected) / 12; recommended: base + adjustment.
- No change under £5 a month, or when the payment changed in the last three months.
- Tracker only after 3 months of supply and within 32 days of the latest meter reading.

Arithmetic is exact (``Fraction``); each published amount is rounded once, half-even, to the
penny.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from billing.model import BillingInputError, add_months, pence
from billing.statement import one_meter
from rating.model import RatedSlot, RatingInputError
from rating.tariff import Tariff

# Relative energy use per calendar month: winter (Dec-Feb, 12) is 50 % above summer (Jun-Aug,
# 8), the supplier's "about 50 % more energy in winter than in summer"; the year sums to 120.
MONTH_WEIGHT = {1: 12, 2: 12, 3: 11, 4: 10, 5: 9, 6: 8, 7: 8, 8: 8, 9: 9, 10: 10, 11: 11, 12: 12}
YEAR_WEIGHT = sum(MONTH_WEIGHT.values())
MIN_CHANGE_P = 500  # under £5 a month: no change suggested
CHANGE_FREEZE_MONTHS = 3
TRACKER_SUPPLY_MONTHS = 3
TRACKER_READING_DAYS = 32
DAYS_A_YEAR = 365


@dataclass(frozen=True, slots=True)
class DdInput:
    today: date
    balance_p: int  # credit positive
    payment_p: int
    last_change: date | None = None
    supply_start: date | None = None  # default: the history's first settlement date
    last_reading: date | None = None  # default: the history's last settlement date
    target_weeks: Decimal = Decimal(1)


def day_weight(d: date) -> Fraction:
    """The share of a year's energy used on ``d`` times YEAR_WEIGHT."""
    return Fraction(MONTH_WEIGHT[d.month], calendar.monthrange(d.year, d.month)[1])


def next_april(today: date) -> date:
    """The first 1 April after today."""
    april = date(today.year, 4, 1)
    return april if today < april else date(today.year + 1, 4, 1)


def payments_before(today: date, april: date) -> int:
    """One payment per calendar month from next month up to and including March."""
    return (april.year * 12 + 3) - (today.year * 12 + today.month)


def _rate(tariff: Tariff, register: str, band: str, kwh: Decimal, cost: Decimal) -> Fraction:
    try:
        return Fraction(tariff.rate(register, band))
    except RatingInputError:
        # A band with no fixed rate (Agile's half-hourly prices): the history's own mean price.
        return Fraction(cost) / Fraction(kwh) if kwh else Fraction(0)


def annual_energy_cost(history: Sequence[RatedSlot], tariff: Tariff) -> Fraction:
    """A year's energy cost in pence (export a credit), exact."""
    days = {s.settlement_date for s in history}
    observed = sum((day_weight(d) for d in days), Fraction(0))
    if not observed:
        raise BillingInputError("rated", "no history in the 12 months before today")
    kwh: dict[tuple[str, str], Decimal] = {}
    cost: dict[tuple[str, str], Decimal] = {}
    for s in history:
        if s.register == "standing":
            continue
        key = (s.register, s.band)
        kwh[key] = kwh.get(key, Decimal(0)) + s.kwh
        cost[key] = cost.get(key, Decimal(0)) + s.cost_p
    total = Fraction(0)
    for (register, band), k in kwh.items():
        sign = -1 if register == "export" else 1
        total += sign * Fraction(k) * _rate(tariff, register, band, k, cost[(register, band)])
    return total * YEAR_WEIGHT / observed


def _tracker(
    inp: DdInput, supply_start: date, last_reading: date, gap_p: int
) -> tuple[str, str]:
    if inp.today < add_months(supply_start, TRACKER_SUPPLY_MONTHS):
        return "unavailable", (f"less than {TRACKER_SUPPLY_MONTHS} months of supply "
                               f"(since {supply_start})")  # fmt: skip
    if inp.today > last_reading + timedelta(days=TRACKER_READING_DAYS):
        return "unavailable", (f"the latest meter reading ({last_reading}) is more than "
                               f"{TRACKER_READING_DAYS} days old")  # fmt: skip
    if gap_p >= MIN_CHANGE_P:
        return "too-little", f"the payment is {gap_p} p a month below the recommended"
    if gap_p <= -MIN_CHANGE_P:
        return "too-much", f"the payment is {-gap_p} p a month above the recommended"
    return "on-track", f"within {MIN_CHANGE_P} p a month of the recommended payment"


def check(history: Sequence[RatedSlot], tariff: Tariff, inp: DdInput) -> dict[str, Any]:
    """The dd.json document for one meter's rated history (any length; the 12 months before
    ``today`` are used)."""
    if inp.payment_p < 0:
        raise BillingInputError("payment_p", "must be >= 0")
    if not inp.target_weeks.is_finite() or inp.target_weeks < 0:
        raise BillingInputError("target_weeks", "must be a number >= 0")
    one_meter(history, "rated")
    start = add_months(inp.today, -12)
    year = [s for s in history if start <= s.settlement_date < inp.today]
    energy = annual_energy_cost(year, tariff)
    standing = Fraction(tariff.standing_charge_p)
    annual = energy + DAYS_A_YEAR * standing
    annual_p = pence(annual)
    base_p = pence(Fraction(annual_p, 12))
    april = next_april(inp.today)
    n = payments_before(inp.today, april)
    days = (april - inp.today).days
    to_april = sum(
        (energy * day_weight(inp.today + timedelta(days=i)) / YEAR_WEIGHT for i in range(days)),
        Fraction(0),
    ) + days * standing
    projected_p = pence(inp.balance_p + n * inp.payment_p - to_april)
    target_p = pence(Fraction(annual_p) * 7 * Fraction(inp.target_weeks) / DAYS_A_YEAR)
    adjustment_p = pence(Fraction(target_p - projected_p, 12))
    recommended_p = max(0, base_p + adjustment_p)  # a payment is never negative
    gap_p = recommended_p - inp.payment_p
    freeze = add_months(inp.today, -CHANGE_FREEZE_MONTHS)
    if inp.last_change is not None and inp.last_change > freeze:
        change, reason = "none", (f"the payment changed on {inp.last_change}, less than "
                                  f"{CHANGE_FREEZE_MONTHS} months ago")  # fmt: skip
    elif abs(gap_p) < MIN_CHANGE_P:
        change, reason = "none", f"the difference ({gap_p} p a month) is under £5 a month"
    else:
        change = "increase" if gap_p > 0 else "decrease"
        reason = f"recommended {recommended_p} p a month against {inp.payment_p} p paid"
    dates = sorted(s.settlement_date for s in history)
    supply_start = inp.supply_start or (dates[0] if dates else inp.today)
    last_reading = inp.last_reading or (dates[-1] if dates else inp.today)
    tracker, tracker_reason = _tracker(inp, supply_start, last_reading, gap_p)
    return {
        "annual_cost_p": annual_p,
        "base_payment_p": base_p,
        "next_april": april.isoformat(),
        "payments_before_april": n,
        "forecast_to_april_p": pence(to_april),
        "projected_april_balance_p": projected_p,
        "target_april_balance_p": target_p,
        "adjustment_p": adjustment_p,
        "recommended_payment_p": recommended_p,
        "change": change,
        "change_reason": reason,
        "tracker": tracker,
        "tracker_reason": tracker_reason,
    }
