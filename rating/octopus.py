"""The one parser of Octopus Energy's unit-rates shape.

``{"count", "next", "previous", "results": [{"value_exc_vat", "value_inc_vat", "valid_from",
"valid_to"}]}``, newest first, as the public REST API pages it and as price files hold it. The
feed, ``flexd rate --prices`` and the daemon all read prices through :func:`parse_unit_rates`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from rating.model import RatingInputError

HALF_HOUR = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class UnitRate:
    """One half-hour's unit rate, p/kWh including VAT."""

    start: datetime
    end: datetime
    value_p: Decimal


def _instant(value: Any, field: str, file: str | None) -> datetime:
    if not isinstance(value, str):
        raise RatingInputError("missing or not an instant", field=field, file=file)
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RatingInputError(
            f"{value[:40]!r} is not an ISO-8601 instant", field=field, file=file
        ) from None
    if t.tzinfo is None:
        raise RatingInputError(f"{value[:40]!r} has no offset", field=field, file=file)
    return t


def parse_unit_rates(doc: Any, file: str | None = None) -> list[UnitRate]:
    """Parse one page (or a whole file) of unit rates into half-hours, oldest first.

    A rate valid for longer than 30 minutes (a fixed tariff) is split into half-hours. An open
    ``valid_to`` (null) is refused, since nobody can know how far it runs; so is a rate that
    does not start and end on a half-hour.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("results"), list):
        raise RatingInputError("missing or not a list", field="results", file=file)
    out: list[UnitRate] = []
    for i, r in enumerate(doc["results"]):
        where = f"results[{i}]"
        if not isinstance(r, Mapping):
            raise RatingInputError("not an object", field=where, file=file)
        start = _instant(r.get("valid_from"), f"{where}.valid_from", file)
        end = _instant(r.get("valid_to"), f"{where}.valid_to", file)
        raw = r.get("value_inc_vat")
        try:
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise InvalidOperation
            value = Decimal(str(raw))
        except InvalidOperation:
            raise RatingInputError(
                "missing or not a number", field=f"{where}.value_inc_vat", file=file
            ) from None
        if not value.is_finite():
            raise RatingInputError("not finite", field=f"{where}.value_inc_vat", file=file)
        s, e = int(start.timestamp()), int(end.timestamp())
        if e <= s:
            raise RatingInputError("valid_to is not after valid_from", field=where, file=file)
        if s % 1800 or e % 1800:
            raise RatingInputError("not whole half-hours", field=where, file=file)
        t = start
        while t < end:
            out.append(UnitRate(t, t + HALF_HOUR, value))
            t += HALF_HOUR
    out.sort(key=lambda u: u.start)
    return out
