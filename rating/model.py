"""The values rating works on: readings, dispatches, Agile prices, rated slots, input errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from core.errors import FieldError

REGISTERS = ("import", "export", "ev")
KINDS = ("smart", "boost", "test")
STATUSES = ("planned", "completed")
LOCATIONS = ("home", "away")


class RatingInputError(FieldError):
    """Bad input: names the file and line (when from a file), the field and the reason."""

    def __init__(
        self, reason: str, *, field: str | None = None, file: str | None = None,
        line: int | None = None,
    ) -> None:  # fmt: skip
        self.file = file
        self.line = line
        where = ":".join(str(x) for x in (file, line) if x is not None)
        what = f"{field}: {reason}" if field else reason
        super().__init__(field, reason, f"{where}: {what}" if where else what)


@dataclass(frozen=True, slots=True)
class Reading:
    meter: str
    start: datetime  # tz-aware, on a :00 or :30 boundary
    kwh: Decimal
    register: str = "import"


@dataclass(frozen=True, slots=True)
class Dispatch:
    meter: str
    start: datetime
    end: datetime
    kind: str  # smart | boost | test
    status: str = "completed"  # planned | completed
    location: str = "home"  # home | away


@dataclass(frozen=True, slots=True)
class RatedSlot:
    """One line of rated.csv."""

    meter: str
    start: datetime
    settlement_date: date
    settlement_period: int
    register: str  # import | export | ev | standing
    kwh: Decimal
    band: str
    unit_rate_p: Decimal
    cost_p: Decimal
