"""The one price book: half-hourly import and export unit rates (p/kWh inc VAT) by UTC start.

The daemon's feed adds to it, its planner reads series from it, its rater and ``flexd rate
--prices`` rate Agile from it. Pure: no clock, no I/O (files are read in :mod:`rating.io`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rating.model import RatingInputError
from rating.octopus import UnitRate, parse_unit_rates

HALF_HOUR_S = 1800
Fallback = Callable[[datetime], tuple[Decimal, Decimal]]


def _key(t: datetime) -> int:
    """Epoch seconds of the half-hour holding ``t``."""
    s = int(t.timestamp())
    return s - s % HALF_HOUR_S


class PriceBook:
    """Known half-hourly prices. ``imports`` is what Agile rating reads (``by_start``)."""

    def __init__(
        self, imports: Mapping[int, Decimal] | None = None,
        exports: Mapping[int, Decimal] | None = None,
    ) -> None:  # fmt: skip
        self.imports: dict[int, Decimal] = dict(imports or {})
        self.exports: dict[int, Decimal] = dict(exports or {})

    @classmethod
    def from_mapping(cls, prices: Mapping[datetime, Decimal | float | str]) -> PriceBook:
        """Import prices by instant (tests and callers that already hold values)."""
        out: dict[int, Decimal] = {}
        for t, v in prices.items():
            if t.tzinfo is None:
                raise RatingInputError("naive instant", field="valid_from")
            out[int(t.timestamp())] = Decimal(str(v))
        return cls(out)

    @classmethod
    def from_octopus(cls, doc: Any, file: str | None = None) -> PriceBook:
        """Import prices from one Octopus unit-rates document."""
        book = cls()
        book.add("import", parse_unit_rates(doc, file))
        return book

    def _side(self, direction: str) -> dict[int, Decimal]:
        if direction not in ("import", "export"):
            raise ValueError(f"direction: {direction!r} is not import or export")
        return self.imports if direction == "import" else self.exports

    def add(self, direction: str, rates: Iterable[UnitRate]) -> int:
        """Add or replace rates; returns how many half-hours were new or changed."""
        side = self._side(direction)
        changed = 0
        for r in rates:
            key = int(r.start.timestamp())
            if side.get(key) != r.value_p:
                changed += 1
                side[key] = r.value_p
        return changed

    @property
    def by_start(self) -> dict[int, Decimal]:
        return self.imports

    def get(self, t: datetime, direction: str = "import") -> Decimal | None:
        return self._side(direction).get(_key(t))

    def known_until(self, start: datetime, direction: str = "import") -> datetime:
        """End of the contiguous run of known prices from ``start``'s half-hour."""
        side = self._side(direction)
        k = _key(start)
        while k in side:
            k += HALF_HOUR_S
        return datetime.fromtimestamp(k, UTC).astimezone(start.tzinfo)

    def series(
        self, start: datetime, n: int, fallback: Fallback
    ) -> tuple[list[Decimal], list[Decimal], int]:
        """n half-hours of (import, export) prices from ``start``; gaps use ``fallback``.
        Returns the two series and how many slots had no import price."""
        imp: list[Decimal] = []
        exp: list[Decimal] = []
        missing = 0
        k0 = _key(start)
        for j in range(n):
            k = k0 + j * HALF_HOUR_S
            i, e = self.imports.get(k), self.exports.get(k)
            if i is None or e is None:
                fi, fe = fallback(datetime.fromtimestamp(k, UTC))
                i = fi if i is None else i
                e = fe if e is None else e
                missing += k not in self.imports
            imp.append(i)
            exp.append(e)
        return imp, exp, missing

    def __len__(self) -> int:
        return len(self.imports)

    def items(self) -> Iterable[tuple[int, Decimal]]:
        return self.imports.items()
