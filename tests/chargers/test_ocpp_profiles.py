"""Plan dispatch intervals to OCPP charging profiles (pure)."""

from datetime import UTC, datetime, timedelta

import pytest

from devices.base import ChargePeriod
from devices.ocpp.profiles import charging_profile, limit_at, limit_for, schedule_periods

T = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def test_alignment_and_zero_gaps():
    periods = [ChargePeriod(T + 30 * M, T + 90 * M, 7000), ChargePeriod(T + 120 * M, T + 150 * M, 3500)]
    start, duration, sched = schedule_periods(periods, T)
    assert start == T  # starts now: zero until the first period
    assert [(p["start_period"], p["limit"]) for p in sched] == [
        (0, 0.0), (1800, 7000.0), (5400, 0.0), (7200, 3500.0), (9000, 0.0)]  # fmt: skip
    assert duration == 48 * 3600


def test_started_period_begins_now():
    start, _, sched = schedule_periods([ChargePeriod(T - 10 * M, T + 20 * M, 7400)], T)
    assert start == T and sched[0] == {"start_period": 0, "limit": 7400.0, "number_phases": 1}


def test_adjacent_equal_periods_merge():
    _, _, sched = schedule_periods([ChargePeriod(T, T + 30 * M, 7000), ChargePeriod(T + 30 * M, T + 60 * M, 7000)], T)
    assert [(p["start_period"], p["limit"]) for p in sched] == [(0, 7000.0), (3600, 0.0)]


@pytest.mark.parametrize(("watts", "unit", "phases", "limit"), [
    (7400, "W", 1, 7400.0), (7360, "A", 1, 32.0), (11040, "A", 3, 16.0), (1380, "A", 1, 6.0)])  # fmt: skip
def test_limits_in_w_and_a(watts, unit, phases, limit):
    assert limit_for(watts, unit, phases) == limit


def test_tx_profile_when_a_transaction_runs_and_limit_lookup():
    p = charging_profile([ChargePeriod(T, T + 30 * M, 11040)], T, profile_id=3, transaction_id=42, unit="A", phases=3)
    assert p["charging_profile_purpose"] == "TxProfile" and p["transaction_id"] == 42
    assert p["charging_schedule"]["charging_rate_unit"] == "A"
    assert limit_at(p, T + 10 * M) == 16.0
    assert limit_at(p, T + 31 * M) == 0.0
    assert limit_at(p, T - M) is None
    d = charging_profile([ChargePeriod(T, T + 30 * M, 7000)], T, profile_id=4, transaction_id=None)
    assert d["charging_profile_purpose"] == "TxDefaultProfile" and "transaction_id" not in d
