"""The values rating works on: readings, dispatches, Agile prices, rated slots, input errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


class Prices:
    """Agile unit rates (p/kWh inc VAT) per half-hour, keyed by UTC start epoch seconds."""

    def __init__(self, by_start: Mapping[int, Decimal]) -> None:
        self.by_start = dict(by_start)

    @classmethod
    def from_mapping(cls, prices: Mapping[datetime, Decimal | float | str]) -> Prices:
        out: dict[int, Decimal] = {}
        for t, v in prices.items():
            if t.tzinfo is None:
                raise RatingInputError("naive instant", field="valid_from")
            out[int(t.timestamp())] = Decimal(str(v))
        return cls(out)

    @classmethod
    def from_octopus(cls, doc: object, file: str | None = None) -> Prices:
        """The Octopus REST shape: {"results": [{value_inc_vat, valid_from, valid_to}]}."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("results"), list):
            raise RatingInputError(
                "expected an object with a results list", field="results", file=file
            )
        out: dict[int, Decimal] = {}
        for i, r in enumerate(doc["results"]):
            field = f"results[{i}]"
            if not isinstance(r, Mapping):
                raise RatingInputError("not an object", field=field, file=file)
            try:
                start = _parse_instant(str(r["valid_from"]))
                end = _parse_instant(str(r["valid_to"]))
                value = Decimal(str(r["value_inc_vat"]))
            except (KeyError, ValueError, ArithmeticError) as exc:
                raise RatingInputError(
                    f"needs valid_from, valid_to and value_inc_vat ({exc})", field=field, file=file
                ) from None
            if not value.is_finite():
                raise RatingInputError("value_inc_vat is not finite", field=field, file=file)
            s, e = int(start.timestamp()), int(end.timestamp())
            if e <= s or s % 1800 or e % 1800:
                raise RatingInputError("not whole half-hours", field=field, file=file)
            for t in range(s, e, 1800):
                out[t] = value
        return cls(out)

    def __len__(self) -> int:
        return len(self.by_start)

    def items(self) -> Iterable[tuple[int, Decimal]]:
        return self.by_start.items()


def _parse_instant(text: str) -> datetime:
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"{text!r} has no offset")
    return t
