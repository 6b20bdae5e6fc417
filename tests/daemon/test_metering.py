from datetime import UTC, datetime, timedelta

import pytest

from flexd.energy.integrators import PowerIntegrator, RegisterIntegrator

T = datetime(2026, 3, 1, 10, 20, tzinfo=UTC)


def test_power_splits_at_half_hour_boundary_and_signs():
    p = PowerIntegrator(max_gap_s=3600)
    p.sample(T, 6000)  # 6 kW import from 10:20
    p.sample(T + timedelta(minutes=20), -3000)  # to 10:40, then 3 kW export
    p.sample(T + timedelta(minutes=40), 0)  # to 11:00
    slot0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    slot1 = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert p.imports.kwh[slot0] == pytest.approx(1.0)  # 10 min at 6 kW
    assert p.imports.kwh[slot1] == pytest.approx(1.0)
    assert p.exports.kwh[slot1] == pytest.approx(1.0)  # 20 min at 3 kW
    closed = p.imports.pop_closed(datetime(2026, 3, 1, 10, 30, tzinfo=UTC))
    assert list(closed) == [slot0] and slot0 not in p.imports.kwh


def test_power_gap_is_not_bridged():
    p = PowerIntegrator(max_gap_s=600)
    p.sample(T, 1000)
    p.sample(T + timedelta(hours=1), 1000)
    assert p.imports.kwh == {}


def test_register_spreads_and_ignores_reset():
    r = RegisterIntegrator()
    r.sample(T, 100.0)
    r.sample(T + timedelta(minutes=20), 102.0)
    r.sample(T + timedelta(minutes=30), 1.0)  # reset
    assert sum(r.acc.kwh.values()) == pytest.approx(2.0)
    assert r.acc.kwh[datetime(2026, 3, 1, 10, 0, tzinfo=UTC)] == pytest.approx(1.0)


def test_register_ignores_an_impossible_jump():
    r = RegisterIntegrator()
    r.sample(T, 0.0)  # read before the charger sent its first meter value
    r.sample(T + timedelta(minutes=1), 1000.0)
    r.sample(T + timedelta(minutes=2), 1000.1)
    assert sum(r.acc.kwh.values()) == pytest.approx(0.1)
