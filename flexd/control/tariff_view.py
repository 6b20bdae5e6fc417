"""A tariff's fixed-rate bands and rates per half-hour: what displays show now, and what the
planner plans on where prices are missing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import rating
from core.timegrid import LONDON, half_hour_start
from rating.prices import PriceBook


def tariff_band(tariff: rating.Tariff, t: datetime) -> str:
    """The tariff's fixed-rate band for the half-hour at ``t`` (Agile has none: "agile")."""
    local = t.astimezone(LONDON)
    minute = local.hour * 60 + local.minute
    w = tariff.windows
    if tariff.kind in ("io-go", "io-go-capped"):
        return "off-peak" if w["off-peak"].contains(minute) else "peak"
    if tariff.kind in ("io-flux", "flux"):
        if w["peak"].contains(minute):
            return "peak"
        if tariff.kind == "flux" and not w["off-peak"].contains(minute):
            return "day"
        return "off-peak"
    return "agile"


def tariff_fallback(tariff: rating.Tariff) -> Callable[[datetime], tuple[Decimal, Decimal]]:
    """The tariff's fixed rates per half-hour: what to plan on when prices are missing."""
    exp_flat = tariff.rates.get("export", {}).get("export", Decimal(0))

    def rates(t: datetime) -> tuple[Decimal, Decimal]:
        band = tariff_band(tariff, t)
        if tariff.kind in ("io-go", "io-go-capped"):
            return tariff.rate("import", band), exp_flat
        if tariff.kind in ("io-flux", "flux"):
            return tariff.rate("import", band), tariff.rate("export", band)
        return Decimal("25"), exp_flat  # Agile with no prices at all: a neutral flat guess

    return rates


def now_view(
    prices: PriceBook, tariff: rating.Tariff, now: datetime, smart: bool = False
) -> dict[str, object]:
    """The band and prices of the half-hour now, for displays (MQTT, Home Assistant).
    On IO Go a SMART dispatch running now makes the half-hour smart-charge."""
    slot = half_hour_start(now)
    imp, exp, missing = prices.series(slot, 1, tariff_fallback(tariff))
    band = tariff_band(tariff, slot)
    if smart and tariff.kind in ("io-go", "io-go-capped"):
        band = "smart-charge"
    return {
        "slot_start": slot.isoformat().replace("+00:00", "Z"),
        "band": band,
        "import_price_p": float(imp[0]),
        "export_price_p": float(exp[0]),
        "price_source": "tariff" if missing else "prices",
    }
