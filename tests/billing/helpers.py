"""Rated slots for billing tests, built as rating would write them."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from core.timegrid import LONDON
from rating.model import RatedSlot

M = "1200012345678"


def slot(day, period=1, cost="10.00", register="import", band="peak", kwh="1.00", meter=M):
    """A rated line on local ``day`` (a date or 'YYYY-MM-DD'), settlement ``period``."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    midnight = datetime.combine(d, time(0), tzinfo=LONDON).astimezone(UTC)
    start = midnight + timedelta(minutes=30 * (period - 1))
    rate = Decimal("0") if register == "standing" else Decimal("10")
    return RatedSlot(meter, start, d, period, register, Decimal(kwh), band, rate, Decimal(cost))


def standing(day, cost="50.00", meter=M):
    return slot(day, 1, cost, "standing", "standing", "0.00", meter)
