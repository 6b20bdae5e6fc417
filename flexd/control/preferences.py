"""Customer EV preferences and their validation, shared by the config, HTTP and MQTT."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from core.errors import FieldError
from core.timegrid import LONDON

EARLIEST_READY_BY = time(4, 0)
LATEST_READY_BY = time(11, 0)


class InputError(FieldError):
    """Bad input from a user or client: names the field and the reason."""

    field: str

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)


@dataclass(frozen=True, slots=True)
class Preferences:
    weekday_ready_by: time = time(7, 0)
    weekend_ready_by: time = time(9, 0)
    target_soc_pct: float = 80.0
    min_soc_pct: float = 20.0

    def ready_by_after(self, instant: datetime) -> datetime:
        """The first ready-by instant (UTC) strictly after ``instant``, in Europe/London."""
        local = instant.astimezone(LONDON)
        day: date = local.date()
        for _ in range(3):
            t = self.weekend_ready_by if day.weekday() >= 5 else self.weekday_ready_by
            candidate = datetime.combine(day, t, tzinfo=LONDON)
            if candidate > local:
                return candidate.astimezone(instant.tzinfo)
            day += timedelta(days=1)
        raise AssertionError("unreachable")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["weekday_ready_by"] = self.weekday_ready_by.strftime("%H:%M")
        d["weekend_ready_by"] = self.weekend_ready_by.strftime("%H:%M")
        return d


def _ready_by(field: str, value: Any) -> time:
    if not isinstance(value, str):
        raise InputError(field, "must be a string HH:MM")
    try:
        t = time.fromisoformat(value)
    except ValueError:
        raise InputError(field, f"{value!r} is not a time HH:MM") from None
    if t.second or t.microsecond or t.minute not in (0, 30):
        raise InputError(field, "must be on a 30-minute step")
    if not EARLIEST_READY_BY <= t <= LATEST_READY_BY:
        raise InputError(field, "must be between 04:00 and 11:00")
    return t


def _pct(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(field, "must be a number")
    if not 0 <= value <= 100:
        raise InputError(field, "must be within 0..100")
    return float(value)


def parse_preferences(doc: Any, base: Preferences | None = None) -> Preferences:
    """Validate a JSON/TOML mapping into Preferences; missing keys keep ``base``'s values."""
    if not isinstance(doc, Mapping):
        raise InputError("body", "must be a JSON object")
    known = {"weekday_ready_by", "weekend_ready_by", "target_soc_pct", "min_soc_pct"}
    for key in doc:
        if key not in known:
            raise InputError(str(key), "unknown field")
    cur = base or Preferences()
    weekday = (
        _ready_by("weekday_ready_by", doc["weekday_ready_by"])
        if "weekday_ready_by" in doc
        else cur.weekday_ready_by
    )
    weekend = (
        _ready_by("weekend_ready_by", doc["weekend_ready_by"])
        if "weekend_ready_by" in doc
        else cur.weekend_ready_by
    )
    target = _pct("target_soc_pct", doc["target_soc_pct"]) if "target_soc_pct" in doc else None
    minimum = _pct("min_soc_pct", doc["min_soc_pct"]) if "min_soc_pct" in doc else None
    target = cur.target_soc_pct if target is None else target
    minimum = cur.min_soc_pct if minimum is None else minimum
    if target < 10:
        raise InputError("target_soc_pct", "must be at least 10")
    if minimum > target:
        raise InputError("min_soc_pct", "must not exceed target_soc_pct")
    return Preferences(weekday, weekend, target, minimum)
