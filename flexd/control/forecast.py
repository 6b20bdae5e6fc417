"""Seasonal-naive forecasts of house load and PV: a per-local-half-hour-of-day average of what
the inverter reported, falling back to a typical profile until a day of data exists."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from core.timegrid import LONDON


def slot_of_day(t: datetime) -> int:
    local = t.astimezone(LONDON)
    return local.hour * 2 + local.minute // 30


def typical_load_w(slot: int) -> float:
    """A UK home with a morning and an evening peak (about 8 kWh a day)."""
    h = slot / 2 + 0.25
    return (
        250 + 500 * math.exp(-(((h - 7.5) / 1.2) ** 2)) + 900 * math.exp(-(((h - 18.5) / 2) ** 2))
    )


@dataclass
class ProfileForecaster:
    """Exponentially weighted mean per local half-hour of day."""

    weight: float = 0.3
    load_w: dict[int, float] = field(default_factory=dict)
    pv_w: dict[int, float] = field(default_factory=dict)

    def observe(self, at: datetime, load_w: float, pv_w: float) -> None:
        k = slot_of_day(at)
        for table, value in ((self.load_w, load_w), (self.pv_w, pv_w)):
            prev = table.get(k)
            table[k] = value if prev is None else prev + self.weight * (value - prev)

    def forecast(
        self, starts: list[datetime], slot_hours: float
    ) -> tuple[list[float], list[float]]:
        """Load and PV in kWh per slot."""
        load, pv = [], []
        for t in starts:
            k = slot_of_day(t)
            load.append(self.load_w.get(k, typical_load_w(k)) / 1000 * slot_hours)
            pv.append(self.pv_w.get(k, 0.0) / 1000 * slot_hours)
        return load, pv
