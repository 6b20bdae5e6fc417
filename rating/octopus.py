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


DIRECT_DEBIT = "DIRECT_DEBIT"


def parse_unit_rates(
    doc: Any, file: str | None = None, *, window: tuple[datetime, datetime] | None = None,
    payment_method: str | None = DIRECT_DEBIT,
) -> list[UnitRate]:  # fmt: skip
    """Parse one page (or a whole file) of unit rates into half-hours, oldest first.

    A rate valid for longer than 30 minutes (a fixed tariff) is split into half-hours, within
    ``window`` when one is given. The current rate of a fixed product has ``valid_to: null``
    (open-ended: the real API does this for every non-Agile product): it runs to the window's
    end, and without a window it is refused. Where the feed gives prices per payment method
    (``DIRECT_DEBIT`` / ``NON_DIRECT_DEBIT``), only ``payment_method``'s are kept; rows without
    one apply to all. A rate that does not start and end on a half-hour is refused.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("results"), list):
        raise RatingInputError("missing or not a list", field="results", file=file)
    out: list[UnitRate] = []
    for i, r in enumerate(doc["results"]):
        where = f"results[{i}]"
        if not isinstance(r, Mapping):
            raise RatingInputError("not an object", field=where, file=file)
        method = r.get("payment_method")
        if method is not None and payment_method is not None and method != payment_method:
            continue
        start = _instant(r.get("valid_from"), f"{where}.valid_from", file)
        if r.get("valid_to") is None and "valid_to" in r:
            if window is None:
                raise RatingInputError("open-ended (null) valid_to needs a time window",
                                       field=f"{where}.valid_to", file=file)  # fmt: skip
            end = max(start, window[1])
        else:
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
        t, stop = start, end
        if window is not None:  # only the half-hours asked for (a fixed rate may span years)
            lo = window[0] - timedelta(seconds=int(window[0].timestamp()) % 1800)
            t, stop = max(start, lo), min(end, window[1])
        while t < stop:
            out.append(UnitRate(t, t + HALF_HOUR, value))
            t += HALF_HOUR
    out.sort(key=lambda u: u.start)
    return out
