"""A plain per-slot reference implementation of the rating rules: zoneinfo and Decimal, one
half-hour at a time, written to be read rather than fast. Tests and the benchmark check the
vectorised engine against it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from core.timegrid import LONDON
from rating.model import Dispatch, RatedSlot, RatingInputError, Reading
from rating.prices import PriceBook
from rating.tariff import Tariff, Window

HH = timedelta(minutes=30)
C = Decimal("0.01")


def _minute(t: datetime) -> int:
    local = t.astimezone(LONDON)
    return local.hour * 60 + local.minute


def _in(w: Window, t: datetime) -> bool:
    return w.contains(_minute(t))


def _floor_hh(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    return t.replace(minute=30 if t.minute >= 30 else 0, second=0, microsecond=0)


def touched(dispatches: Sequence[Dispatch], meter: str, counted: tuple[str, ...]) -> list[datetime]:
    out: set[datetime] = set()
    for d in dispatches:
        if d.meter != meter or d.kind != "smart" or d.location != "home" or d.status not in counted:
            continue
        t = _floor_hh(d.start)
        while t < d.end:
            out.add(t)
            t += HH
    return sorted(out)


def allowed_blocks(hhs: list[datetime], tariff: Tariff) -> set[datetime]:
    used: dict[object, int] = defaultdict(int)
    out = set()
    for t in hhs:
        local = t.astimezone(LONDON)
        # The local midday-to-midday period: wall-clock arithmetic on the local time.
        period = (local - timedelta(minutes=tariff.allowance_start_min)).date()
        if used[period] < tariff.allowance_blocks:
            out.add(t)
        used[period] += 1
    return out


def _cost(kwh: Decimal, rate: Decimal) -> Decimal:
    return (kwh * rate).quantize(C, rounding=ROUND_HALF_EVEN)


def rate_reference(
    tariff: Tariff,
    readings: Sequence[Reading],
    dispatches: Sequence[Dispatch] = (),
    prices: PriceBook | None = None,
) -> list[RatedSlot]:
    counted = ("completed",) if tariff.dispatch_mode == "completed" else ("completed", "planned")
    by_meter: dict[str, set[datetime]] = {}
    allowed: dict[str, set[datetime]] = {}
    ev_of: dict[tuple[str, datetime], Decimal] = {}
    for r in readings:
        if r.register == "ev":
            ev_of[(r.meter, r.start.astimezone(UTC))] = r.kwh.quantize(C, rounding=ROUND_HALF_EVEN)
    rows: list[tuple[str, datetime, int, RatedSlot]] = []
    days: set[tuple[str, object]] = set()
    for r in readings:
        t = r.start.astimezone(UTC)
        if r.meter not in by_meter:
            hhs = touched(dispatches, r.meter, counted)
            by_meter[r.meter] = set(hhs)
            allowed[r.meter] = allowed_blocks(hhs, tariff)
        kwh = r.kwh.quantize(C, rounding=ROUND_HALF_EVEN)
        kind = tariff.kind
        local = t.astimezone(LONDON)
        days.add((r.meter, local.date()))
        band, rate = "peak", Decimal(0)
        if kind in ("io-go", "io-go-capped"):
            is_touched = t in by_meter[r.meter]
            smart = is_touched and (kind == "io-go" or t in allowed[r.meter])
            if r.register == "ev":
                if kind == "io-go":
                    continue
                band = "off-peak" if smart else "peak"
                rate = tariff.rate("ev", band)
            elif r.register == "export":
                band, rate = "export", tariff.rate("export", "export")
            else:
                if kind == "io-go-capped":
                    kwh = max(Decimal("0.00"), kwh - ev_of.get((r.meter, t), Decimal(0)))
                if _in(tariff.windows["off-peak"], t):
                    band = "off-peak"
                elif smart:
                    band = "smart-charge"
                rate = tariff.rate("import", band)
        elif kind in ("io-flux", "flux"):
            if r.register == "ev":
                continue
            if _in(tariff.windows["peak"], t):
                band = "peak"
            elif kind == "flux" and _in(tariff.windows["off-peak"], t):
                band = "off-peak"
            else:
                band = "day" if kind == "flux" else "off-peak"
            rate = tariff.rate(r.register, band)
        else:  # agile
            if r.register == "ev":
                continue
            if r.register == "export":
                band, rate = "export", tariff.rate("export", "export")
            else:
                band = "agile"
                p = None if prices is None else prices.by_start.get(int(t.timestamp()))
                if p is None:
                    raise RatingInputError(f"no Agile price for {t.isoformat()}", field="prices")
                rate = p
        midnight = datetime.combine(local.date(), datetime.min.time(), tzinfo=LONDON)
        sp = int((t - midnight.astimezone(UTC)).total_seconds() // 1800) + 1
        order = ("import", "export", "ev").index(r.register)
        cost = _cost(kwh, rate)
        slot = RatedSlot(r.meter, t, local.date(), sp, r.register, kwh, band, rate, cost)
        rows.append((r.meter, t, order, slot))
    for meter, day in days:
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=LONDON).astimezone(UTC)  # type: ignore[arg-type]
        sc = tariff.standing_charge_p
        rows.append((meter, midnight, 9, RatedSlot(
            meter, midnight, day, 1, "standing", Decimal("0.00"), "standing", sc,  # type: ignore[arg-type]
            sc.quantize(C, rounding=ROUND_HALF_EVEN))))  # fmt: skip
    rows.sort(key=lambda x: (x[0], x[1], x[2]))
    return [x[3] for x in rows]
