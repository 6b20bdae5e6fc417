"""The vectorised rating core: numpy over whole arrays, int64 fixed point, no per-slot loop.

Units inside the core: energy in centi-kWh (0.01 kWh, the billed precision), unit rates in
1e-4 p/kWh, costs in 0.01 p. kWh are rounded half-to-even to 0.01 before pricing, each line's
cost is rounded half-to-even to 0.01 p, and totals are sums of lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import numpy.typing as npt

from core import timegrid
from rating.model import Dispatch, RatedSlot, RatingInputError, Reading
from rating.prices import PriceBook
from rating.tariff import Tariff

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
B = npt.NDArray[np.bool_]

BANDS = ("off-peak", "smart-charge", "peak", "day", "agile", "export")
OFF_PEAK, SMART, PEAK, DAY, AGILE, EXPORT = range(6)
REG_IMPORT, REG_EXPORT, REG_EV = 0, 1, 2
REGISTER_NAMES = ("import", "export", "ev")
RATE_SCALE = 10_000  # 1e-4 p
CENTS = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class CoreInput:
    """Readings and dispatches as arrays; meters are small integer codes."""

    meter: I64
    start: I64  # UTC epoch seconds, multiples of 1800
    register: I8
    kwh_c: I64  # 0.01 kWh
    d_meter: I64
    d_start: I64
    d_end: I64
    d_counts: B  # a SMART dispatch at home whose status the tariff counts
    agile_rate: I64 | None = None  # per reading, 1e-4 p (agile import only)
    # Prices finer than 1e-4 p (the live API gives values such as 13.50195): reading index ->
    # the exact price. The core rates them at the nearest 1e-4 p; the rated line then takes the
    # exact price, and its cost is rounded from kWh x price once, there (exact_line).
    exact_rate: dict[int, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CoreOutput:
    band: I8
    billed_kwh_c: I64
    rate: I64  # 1e-4 p/kWh
    cost_c: I64  # 0.01 p
    keep: B  # False for readings a tariff ignores (ev on uncapped tariffs)


def to_rate_units(p: Decimal) -> int:
    q = (p * RATE_SCALE).to_integral_value(rounding=ROUND_HALF_EVEN)
    if q != p * RATE_SCALE:
        raise RatingInputError(f"rate {p} has more than 4 decimal places", field="rate")
    return int(q)


def round_half_even_div(x: I64, d: int) -> I64:
    """x / d rounded half to even, exactly, for int64 x (floor division semantics)."""
    q, r = np.divmod(x, d)
    twice = 2 * r
    up = (twice > d) | ((twice == d) & (q % 2 == 1))
    return q + up.astype(np.int64)


def _keys(meter: I64, start: I64) -> I64:
    return meter * (1 << 32) + start // timegrid.HALF_HOUR


def touched_half_hours(inp: CoreInput) -> tuple[I64, I64, I64]:
    """Unique (meter, half-hour) keys touched by counting dispatches, sorted, and their parts."""
    m = inp.d_counts
    meter, a, b = inp.d_meter[m], inp.d_start[m], inp.d_end[m]
    first = a // timegrid.HALF_HOUR
    last = -((-b) // timegrid.HALF_HOUR) - 1  # ceil(b / 1800) - 1: the last half-hour touched
    counts = np.maximum(last - first + 1, 0)
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    rep_first = np.repeat(first, counts)
    offs = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    hh = rep_first + offs
    keys = np.unique(np.repeat(meter, counts) * (1 << 32) + hh)
    return keys, keys >> 32, keys & ((1 << 32) - 1)


def allowance_mask(keys_meter: I64, keys_hh: I64, tariff: Tariff) -> B:
    """For sorted touched keys: within the first N blocks of their local midday-to-midday period."""
    if keys_hh.size == 0:
        return np.zeros(0, dtype=np.bool_)
    utc = keys_hh * timegrid.HALF_HOUR
    local = timegrid.local_seconds(utc)
    period = (local - tariff.allowance_start_min * 60) // timegrid.DAY
    group = keys_meter * (1 << 32) + period
    new = np.ones(group.size, dtype=np.bool_)
    new[1:] = group[1:] != group[:-1]
    starts = np.flatnonzero(new)
    rank = np.arange(group.size) - np.repeat(starts, np.diff(np.append(starts, group.size)))
    return rank < tariff.allowance_blocks


def _member(keys: I64, sorted_keys: I64) -> tuple[B, I64]:
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=np.bool_), np.zeros(keys.size, dtype=np.int64)
    idx = np.searchsorted(sorted_keys, keys)
    idx_c = np.minimum(idx, sorted_keys.size - 1)
    return sorted_keys[idx_c] == keys, idx_c


def _in_window(minute: I64, start: int, end: int) -> B:
    if start < end:
        return (minute >= start) & (minute < end)
    return (minute >= start) | (minute < end)


def rate_core(tariff: Tariff, inp: CoreInput) -> CoreOutput:
    n = inp.start.size
    minute = timegrid.local_minute(inp.start)
    band = np.full(n, PEAK, dtype=np.int8)
    rate = np.zeros(n, dtype=np.int64)
    billed = inp.kwh_c.copy()
    keep = np.ones(n, dtype=np.bool_)
    reg = inp.register
    is_imp, is_exp, is_ev = reg == REG_IMPORT, reg == REG_EXPORT, reg == REG_EV
    R = lambda register, b: to_rate_units(tariff.rate(register, b))  # noqa: E731
    w = tariff.windows
    kind = tariff.kind

    if kind in ("io-go", "io-go-capped"):
        core = _in_window(minute, w["off-peak"].start_min, w["off-peak"].end_min)
        keys = _keys(inp.meter, inp.start)
        t_keys, t_meter, t_hh = touched_half_hours(inp)
        touched, t_idx = _member(keys, t_keys)
        if kind == "io-go-capped":
            allowed_keys = allowance_mask(t_meter, t_hh, tariff)
            allowed = touched & (allowed_keys[t_idx] if t_keys.size else touched)
            # The home's share is import minus the car's own metered energy.
            ev_keys = keys[is_ev]
            order = np.argsort(ev_keys, kind="stable")
            ev_sorted, ev_kwh = ev_keys[order], inp.kwh_c[is_ev][order]
            has_ev, e_idx = _member(keys, ev_sorted)
            ev_of = np.where(has_ev, ev_kwh[e_idx] if ev_sorted.size else 0, 0)
            billed = np.where(is_imp, np.maximum(inp.kwh_c - ev_of, 0), billed)
            smart = allowed
            band = np.where(is_ev, np.where(allowed, OFF_PEAK, PEAK), band).astype(np.int8)
            rate = np.where(is_ev, np.where(allowed, R("ev", "off-peak"), R("ev", "peak")), rate)
        else:
            smart = touched
            keep &= ~is_ev
        home = np.where(core, OFF_PEAK, np.where(smart, SMART, PEAK)).astype(np.int8)
        band = np.where(is_imp, home, band).astype(np.int8)
        home_rate = np.select(
            [home == OFF_PEAK, home == SMART],
            [R("import", "off-peak"), R("import", "smart-charge")],
            R("import", "peak"),
        )
        rate = np.where(is_imp, home_rate, rate)
        if is_exp.any():
            band = np.where(is_exp, EXPORT, band).astype(np.int8)
            rate = np.where(is_exp, R("export", "export"), rate)
    elif kind in ("io-flux", "flux"):
        keep &= ~is_ev
        peak = _in_window(minute, w["peak"].start_min, w["peak"].end_min)
        if kind == "flux":
            off = _in_window(minute, w["off-peak"].start_min, w["off-peak"].end_min)
            band = np.where(peak, PEAK, np.where(off, OFF_PEAK, DAY)).astype(np.int8)
        else:
            band = np.where(peak, PEAK, OFF_PEAK).astype(np.int8)
        for register, mask in (("import", is_imp), ("export", is_exp)):
            if not mask.any():
                continue
            names = ("off-peak", "day", "peak") if kind == "flux" else ("off-peak", "peak")
            table = {b: R(register, b) for b in names}
            r = np.select(
                [band == OFF_PEAK, band == PEAK],
                [table["off-peak"], table["peak"]],
                table.get("day", 0),
            )
            rate = np.where(mask, r, rate)
    elif kind == "agile":
        keep &= ~is_ev
        band = np.where(is_exp, EXPORT, AGILE).astype(np.int8)
        if inp.agile_rate is None:
            if is_imp.any():
                raise RatingInputError("Agile needs prices (--prices)", field="prices")
        else:
            rate = np.where(is_imp, inp.agile_rate, rate)
        if is_exp.any():
            rate = np.where(is_exp, R("export", "export"), rate)
    else:  # pragma: no cover - parse_tariff refuses other kinds
        raise RatingInputError(f"unknown tariff kind {kind}", field="kind")

    cost = round_half_even_div(billed * rate, RATE_SCALE)  # 1e-6 p -> 0.01 p
    return CoreOutput(band.astype(np.int8), billed, rate.astype(np.int64), cost, keep)


# --- the Python API over the core -----------------------------------------------------------


def _kwh_c(value: Decimal) -> int:
    return int((value / CENTS).to_integral_value(rounding=ROUND_HALF_EVEN))


def validate_readings(readings: Sequence[Reading]) -> None:
    seen: set[tuple[str, int, str]] = set()
    for i, r in enumerate(readings):
        field = f"readings[{i}]"
        if r.start.tzinfo is None:
            raise RatingInputError("instant has no offset", field=f"{field}.start")
        ts = r.start.timestamp()
        if ts % 1800:
            raise RatingInputError("not on a half-hour boundary", field=f"{field}.start")
        if not r.kwh.is_finite() or r.kwh < 0:
            raise RatingInputError("kwh must be a number >= 0", field=f"{field}.kwh")
        if r.register not in REGISTER_NAMES:
            raise RatingInputError(f"unknown register {r.register!r}", field=f"{field}.register")
        key = (r.meter, int(ts), r.register)
        if key in seen:
            raise RatingInputError("duplicate (meter, start, register)", field=field)
        seen.add(key)


def build_input(
    tariff: Tariff,
    readings: Sequence[Reading],
    dispatches: Sequence[Dispatch],
    prices: PriceBook | None,
) -> tuple[CoreInput, list[str]]:
    meters = sorted({r.meter for r in readings})
    code = {m: i for i, m in enumerate(meters)}
    n = len(readings)
    start = np.fromiter((int(r.start.timestamp()) for r in readings), dtype=np.int64, count=n)
    meter = np.fromiter((code[r.meter] for r in readings), dtype=np.int64, count=n)
    register = np.fromiter(
        (REGISTER_NAMES.index(r.register) for r in readings), dtype=np.int8, count=n
    )
    kwh_c = np.fromiter((_kwh_c(r.kwh) for r in readings), dtype=np.int64, count=n)
    ds = [d for d in dispatches if d.meter in code]
    counted = ("completed",) if tariff.dispatch_mode == "completed" else ("completed", "planned")
    d_counts = np.fromiter(
        (d.kind == "smart" and d.location == "home" and d.status in counted for d in ds),
        dtype=np.bool_,
        count=len(ds),
    )
    agile = None
    exact: dict[int, Decimal] = {}
    if tariff.kind == "agile" and prices is not None:
        vals = []
        for i, (r, t) in enumerate(zip(readings, start.tolist(), strict=True)):
            if r.register != "import":
                vals.append(0)
                continue
            p = prices.by_start.get(t)
            if p is None:
                raise RatingInputError(f"no Agile price for {r.start.isoformat()}", field="prices")
            units = (p * RATE_SCALE).to_integral_value(rounding=ROUND_HALF_EVEN)
            if units != p * RATE_SCALE:
                exact[i] = p
            vals.append(int(units))
        agile = np.asarray(vals, dtype=np.int64)
    inp = CoreInput(
        meter=meter,
        start=start,
        register=register,
        kwh_c=kwh_c,
        d_meter=np.fromiter((code[d.meter] for d in ds), dtype=np.int64, count=len(ds)),
        d_start=np.fromiter((_start_s(d.start) for d in ds), dtype=np.int64, count=len(ds)),
        d_end=np.fromiter((_end_s(d.end) for d in ds), dtype=np.int64, count=len(ds)),
        d_counts=d_counts,
        agile_rate=agile,
        exact_rate=exact,
    )
    return inp, meters


def exact_line(inp: CoreInput, out: CoreOutput, i: int) -> tuple[Decimal, Decimal] | None:
    """(unit rate, cost) for reading ``i`` when its price is finer than the core's units: the
    cost is kWh x the exact price, rounded half-even to 0.01 p once."""
    p = inp.exact_rate.get(i)
    if p is None:
        return None
    kwh = Decimal(int(out.billed_kwh_c[i])).scaleb(-2)
    return p, (kwh * p).quantize(CENTS, rounding=ROUND_HALF_EVEN)


def _start_s(t: datetime) -> int:
    # Sub-second instants: starts floor and ends ceil, so a touch of a fraction of a second
    # still touches its half-hour.
    return math.floor(t.timestamp())


def _end_s(t: datetime) -> int:
    return math.ceil(t.timestamp())


def validate_dispatches(dispatches: Sequence[Dispatch]) -> None:
    from rating.model import KINDS, LOCATIONS, STATUSES

    for i, d in enumerate(dispatches):
        field = f"dispatches[{i}]"
        if d.start.tzinfo is None or d.end.tzinfo is None:
            raise RatingInputError("instant has no offset", field=field)
        if d.end <= d.start:
            raise RatingInputError("end must be after start", field=f"{field}.end")
        if d.kind not in KINDS:
            raise RatingInputError(f"unknown kind {d.kind!r}", field=f"{field}.kind")
        if d.status not in STATUSES:
            raise RatingInputError(f"unknown status {d.status!r}", field=f"{field}.status")
        if d.location not in LOCATIONS:
            raise RatingInputError(f"unknown location {d.location!r}", field=f"{field}.location")


def rate(
    tariff: Tariff,
    readings: Sequence[Reading],
    dispatches: Sequence[Dispatch] = (),
    prices: PriceBook | None = None,
) -> list[RatedSlot]:
    """Rate readings (plus one standing row per meter per local day), sorted by meter, start."""
    validate_readings(readings)
    validate_dispatches(dispatches)
    if not readings:
        return []
    inp, meters = build_input(tariff, readings, dispatches, prices)
    out = rate_core(tariff, inp)
    return assemble(tariff, inp, out, meters)


def assemble(tariff: Tariff, inp: CoreInput, out: CoreOutput, meters: list[str]) -> list[RatedSlot]:
    day, sp = timegrid.settlement_period(inp.start)
    rows: list[tuple[int, int, int, RatedSlot]] = []
    dates: dict[int, object] = {}
    for i in np.flatnonzero(out.keep).tolist():
        d = int(day[i])
        if d not in dates:
            dates[d] = timegrid.day_to_date(d)
        rows.append((
            int(inp.meter[i]), int(inp.start[i]), int(inp.register[i]),
            RatedSlot(
                meter=meters[int(inp.meter[i])],
                start=datetime.fromtimestamp(int(inp.start[i]), UTC),
                settlement_date=dates[d],  # type: ignore[arg-type]
                settlement_period=int(sp[i]),
                register=REGISTER_NAMES[int(inp.register[i])],
                kwh=Decimal(int(out.billed_kwh_c[i])).scaleb(-2),
                band=BANDS[int(out.band[i])],
                unit_rate_p=fine[0] if (fine := exact_line(inp, out, i)) else _rate_decimal(
                    int(out.rate[i])),
                cost_p=fine[1] if fine else Decimal(int(out.cost_c[i])).scaleb(-2),
            ),
        ))  # fmt: skip
    standing = tariff.standing_charge_p
    cost = standing.quantize(CENTS, rounding=ROUND_HALF_EVEN)
    pairs = np.unique(inp.meter * (1 << 32) + day)
    midnight = timegrid.local_midnight_utc(pairs & ((1 << 32) - 1))
    for key, t in zip(pairs.tolist(), midnight.tolist(), strict=True):
        m, d = key >> 32, key & ((1 << 32) - 1)
        rows.append((m, int(t), 9, RatedSlot(
            meter=meters[m], start=datetime.fromtimestamp(int(t), UTC),
            settlement_date=timegrid.day_to_date(d), settlement_period=1, register="standing",
            kwh=Decimal("0.00"), band="standing", unit_rate_p=standing, cost_p=cost,
        )))  # fmt: skip
    rows.sort(key=lambda r: (meters[r[0]], r[1], r[2]))
    return [r[3] for r in rows]


def _rate_decimal(units: int) -> Decimal:
    d = Decimal(units).scaleb(-4)
    two = d.quantize(CENTS)
    if two == d:
        return two
    return Decimal(str(d).rstrip("0"))
