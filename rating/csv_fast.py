"""rated.csv straight from the vectorised core's arrays.

``rated_csv_text(rate(...))`` builds a RatedSlot (a datetime, a date and three Decimals) per row
and then formats it; for a billing run that object layer costs more than the rating. This path
formats the same text from the core's integer arrays, caching the few distinct instants, dates
and unit rates, and is checked to produce the identical file (tests/rating/test_property.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN

import numpy as np

from core import timegrid
from rating.engine import (
    BANDS,
    CENTS,
    REGISTER_NAMES,
    _rate_decimal,
    build_input,
    exact_line,
    rate_core,
    validate_dispatches,
    validate_readings,
)
from rating.model import Dispatch, Reading
from rating.prices import PriceBook
from rating.tariff import Tariff

STANDING = 9  # register code: sorts after import/export/ev within a start, as in assemble()


def _fixed2(v: int) -> str:
    """An integer count of hundredths as Decimal(v).scaleb(-2) prints it."""
    sign = "-" if v < 0 else ""
    a = abs(v)
    return f"{sign}{a // 100}.{a % 100:02d}"


def rate_csv_text(
    tariff: Tariff,
    readings: Sequence[Reading],
    dispatches: Sequence[Dispatch] = (),
    prices: PriceBook | None = None,
) -> str:
    """The rated.csv text ``rated_csv_text(rate(tariff, readings, dispatches, prices))`` gives."""
    from rating.io import RATED_COLUMNS

    validate_readings(readings)
    validate_dispatches(dispatches)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RATED_COLUMNS)
    if not readings:
        return buf.getvalue()
    inp, meters = build_input(tariff, readings, dispatches, prices)
    out = rate_core(tariff, inp)
    keep = np.flatnonzero(out.keep)
    day, sp = timegrid.settlement_period(inp.start)
    pairs = np.unique(inp.meter * (1 << 32) + day)
    s_day = pairs & ((1 << 32) - 1)
    n_std = pairs.size
    meter = np.concatenate([inp.meter[keep].astype(np.int64), pairs >> 32])
    start = np.concatenate([inp.start[keep], timegrid.local_midnight_utc(s_day)])
    reg = np.concatenate([inp.register[keep].astype(np.int64), np.full(n_std, STANDING)])
    dday = np.concatenate([day[keep], s_day])
    period = np.concatenate([sp[keep], np.ones(n_std, dtype=np.int64)])
    kwh = np.concatenate([out.billed_kwh_c[keep], np.zeros(n_std, dtype=np.int64)])
    band = np.concatenate([out.band[keep].astype(np.int64), np.full(n_std, -1)])
    rate = np.concatenate([out.rate[keep], np.zeros(n_std, dtype=np.int64)])
    cost = np.concatenate([out.cost_c[keep], np.zeros(n_std, dtype=np.int64)])
    # Rows sort by meter name, then start, then register, exactly as assemble() sorts.
    name_rank = np.empty(len(meters), dtype=np.int64)
    name_rank[np.argsort(np.array(meters, dtype=object))] = np.arange(len(meters))
    order = np.lexsort((reg, start, name_rank[meter]))
    standing = tariff.standing_charge_p
    std_rate, std_cost = str(standing), str(standing.quantize(CENTS, rounding=ROUND_HALF_EVEN))
    isos: dict[int, str] = {}
    dates: dict[int, str] = {}
    rates: dict[int, str] = {}
    names = [*REGISTER_NAMES]
    for i in order.tolist():
        t, d = int(start[i]), int(dday[i])
        iso = isos.get(t)
        if iso is None:
            iso = isos[t] = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ds = dates.get(d)
        if ds is None:
            ds = dates[d] = timegrid.day_to_date(d).isoformat()
        r = int(reg[i])
        if r == STANDING:
            w.writerow((meters[int(meter[i])], iso, ds, "1", "standing", "0.00", "standing",
                        std_rate, std_cost))  # fmt: skip
            continue
        units = int(rate[i])
        rs = rates.get(units)
        if rs is None:
            rs = rates[units] = str(_rate_decimal(units))
        kwh_s, cost_s = _fixed2(int(kwh[i])), _fixed2(int(cost[i]))
        if inp.exact_rate and (fine := exact_line(inp, out, int(keep[i]))) is not None:
            rs, cost_s = str(fine[0]), str(fine[1])
        w.writerow((meters[int(meter[i])], iso, ds, str(int(period[i])), names[r], kwh_s,
                    BANDS[int(band[i])], rs, cost_s))  # fmt: skip
    return buf.getvalue()
