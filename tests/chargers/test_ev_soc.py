"""SoC source fallback: charger, else vehicle API, else user entry plus delivered energy."""

from datetime import UTC, datetime, timedelta

import pytest

from devices.base import SocSource
from devices.ev_soc import SocReading, UserEntry, choose_soc

NOW = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def user(soc=40.0, kwh=6.0, minutes=1.0, cap=60.0, eff=0.9) -> UserEntry:
    return UserEntry(soc, kwh, ago(minutes), cap, eff)


@pytest.mark.parametrize(
    ("charger", "vehicle", "entry", "soc", "source", "age_s"),
    [
        # the charger wins whenever it has a fresh reading
        (SocReading(55, ago(2)), SocReading(50, ago(1)), user(), 55, SocSource.CHARGER, 120),
        # charger reports none: vehicle API
        (None, SocReading(50, ago(10)), user(), 50, SocSource.VEHICLE_API, 600),
        # charger stale (31 min > 30): vehicle API
        (SocReading(55, ago(31)), SocReading(50, ago(10)), user(), 50, SocSource.VEHICLE_API, 600),
        # exactly max_age is still fresh
        (SocReading(55, ago(30)), None, None, 55, SocSource.CHARGER, 1800),
        # both stale: user entry + 6 kWh * 0.9 / 60 kWh = +9 %
        (SocReading(55, ago(45)), SocReading(50, ago(90)), user(), 49, SocSource.ESTIMATE, 60),
        # none at all from devices
        (None, None, user(), 49, SocSource.ESTIMATE, 60),
        # efficiency 1.0 and a 75 kWh car: 40 + 6/75*100 = 48
        (None, None, user(cap=75, eff=1.0), 48, SocSource.ESTIMATE, 60),
        # estimate never exceeds 100 %
        (None, None, user(soc=95, kwh=30), 100, SocSource.ESTIMATE, 60),
        # nothing delivered yet: the user's own number
        (None, None, user(kwh=0.0, minutes=0), 40, SocSource.ESTIMATE, 0),
        # a device clock slightly ahead counts as age 0, not negative
        (SocReading(60, NOW + MIN), None, None, 60, SocSource.CHARGER, 0),
    ],
)
def test_fallback_order(charger, vehicle, entry, soc, source, age_s):
    got = choose_soc(NOW, charger=charger, vehicle=vehicle, user=entry)
    assert got.source == source
    assert got.soc_pct == pytest.approx(soc)
    assert got.age_s == pytest.approx(age_s)


def test_measured_at_is_the_sources_instant():
    got = choose_soc(NOW, charger=None, vehicle=SocReading(50, ago(10)))
    assert got.measured_at == ago(10)


def test_everything_stale_is_unknown():
    got = choose_soc(
        NOW, charger=SocReading(55, ago(60)), vehicle=SocReading(50, ago(60)), user=user(minutes=60)
    )
    assert got.source == SocSource.UNKNOWN and got.soc_pct is None and got.measured_at is None


def test_max_age_is_configurable():
    got = choose_soc(NOW, charger=SocReading(55, ago(3)), vehicle=SocReading(50, ago(1)), max_age=2 * MIN)
    assert got.source == SocSource.VEHICLE_API


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"soc_pct": 101.0}, "soc_pct"),
        ({"delivered_kwh": -1.0}, "delivered_kwh"),
        ({"capacity_kwh": 0.0}, "capacity_kwh"),
        ({"efficiency": 0.0}, "efficiency"),
        ({"efficiency": 1.2}, "efficiency"),
    ],
)
def test_bad_user_entry_names_the_field(kwargs, field):
    base = {"soc_pct": 40.0, "delivered_kwh": 1.0, "delivered_at": NOW, "capacity_kwh": 60.0}
    with pytest.raises(ValueError, match=field):
        UserEntry(**(base | kwargs))


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="measured_at"):
        SocReading(50, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="now"):
        choose_soc(datetime(2026, 1, 1))
