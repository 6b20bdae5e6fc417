"""The Europe/London half-hour grid: scalar helpers for one instant, and local time for arrays
of UTC instants without a per-slot Python loop.

The UK rule since 1996: BST from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last
Sunday of October. Tests check these functions against zoneinfo over many years.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
DAY = 86400
HALF_HOUR = 1800
LONDON = ZoneInfo("Europe/London")
SLOT = timedelta(minutes=30)


def half_hour_start(t: datetime) -> datetime:
    """The start of the half-hour holding ``t`` (UTC offsets are whole hours here)."""
    return t.replace(minute=30 if t.minute >= 30 else 0, second=0, microsecond=0)


def next_local(after: datetime, hhmm: str) -> datetime:
    """The next Europe/London wall-clock ``hhmm`` strictly after ``after``."""
    t = time.fromisoformat(hhmm)
    local = after.astimezone(LONDON)
    candidate = datetime.combine(local.date(), t, tzinfo=LONDON)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), t, tzinfo=LONDON)
    return candidate.astimezone(after.tzinfo)


def local_days(starts: Iterable[datetime]) -> set[date]:
    """The Europe/London dates holding these instants."""
    return {s.astimezone(LONDON).date() for s in starts}


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """UTC start and end of one Europe/London day (23, 24 or 25 hours long)."""
    start = datetime.combine(day, time(0), tzinfo=LONDON)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LONDON)
    return start.astimezone(UTC), end.astimezone(UTC)


def _last_sunday(year: int, month: int) -> date:
    d = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - 6) % 7)


def _transitions(lo_year: int, hi_year: int) -> I64:
    out = []
    for y in range(lo_year, hi_year + 1):
        for month in (3, 10):
            d = _last_sunday(y, month)
            out.append(int(datetime(d.year, d.month, d.day, 1, tzinfo=UTC).timestamp()))
    return np.asarray(out, dtype=np.int64)


def offsets(utc: I64) -> I64:
    """Seconds to add to a UTC instant to get London wall-clock time (0 or 3600)."""
    if utc.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo = datetime.fromtimestamp(int(utc.min()), UTC).year - 1
    hi = datetime.fromtimestamp(int(utc.max()), UTC).year + 1
    t = _transitions(lo, hi)
    idx = np.searchsorted(t, utc, side="right")
    return np.where(idx % 2 == 1, 3600, 0).astype(np.int64)


def local_seconds(utc: I64) -> I64:
    return utc + offsets(utc)


def local_day(utc: I64) -> I64:
    """Local date as days since 1970-01-01."""
    return local_seconds(utc) // DAY


def local_minute(utc: I64) -> I64:
    """Local wall-clock minute of the day."""
    return (local_seconds(utc) % DAY) // 60


def local_midnight_utc(day: I64) -> I64:
    """The UTC instant of local midnight starting each local day."""
    wall = day * DAY
    # Transitions happen at 01:00 UTC, after local midnight, so the offset an hour before
    # the wall-clock midnight (read as UTC) is the one in force at midnight.
    return wall - offsets(wall - 3600)


def settlement_period(utc: I64) -> tuple[I64, I64]:
    """(local day, settlement period 1..46/48/50) for half-hour starts."""
    day = local_day(utc)
    return day, (utc - local_midnight_utc(day)) // HALF_HOUR + 1


def day_to_date(day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day))
