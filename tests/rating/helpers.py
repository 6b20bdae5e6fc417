from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from rating import Dispatch, Reading

LONDON = ZoneInfo("Europe/London")
M = "m1"


def local(y, mo, d, h, mi=0):
    """A London wall-clock time as a UTC instant (first occurrence on the autumn night)."""
    return datetime(y, mo, d, h, mi, tzinfo=LONDON).astimezone(UTC)


def day_readings(day_start_utc, n, kwh="1.00", register="import", meter=M):
    return [
        Reading(meter, day_start_utc + timedelta(minutes=30 * i), Decimal(kwh), register)
        for i in range(n)
    ]


def smart(start, end, status="completed", location="home", kind="smart", meter=M):
    return Dispatch(meter, start, end, kind, status, location)


def bands(slots, register="import"):
    return {s.start: s.band for s in slots if s.register == register}
