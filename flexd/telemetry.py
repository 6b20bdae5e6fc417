"""Per-site metering state fed by every poll: grid import/export and EV energy per half-hour,
and each charger's energy-register history (for the energy delivered inside a dispatch)."""

from __future__ import annotations

import bisect
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from flexd.metering import HalfHourAccumulator, PowerIntegrator, RegisterIntegrator
from flexd.storage import ReadingRow, parse_ts, ts

KWH_PLACES = Decimal("0.001")


@dataclass
class RegisterHistory:
    """(instant, kWh register) samples for a charger, kept for ``keep``."""

    keep: timedelta = timedelta(hours=48)
    samples: deque[tuple[datetime, float]] = field(default_factory=deque)

    def add(self, at: datetime, register_kwh: float) -> None:
        if self.samples and at <= self.samples[-1][0]:
            return
        self.samples.append((at, register_kwh))
        while self.samples and self.samples[0][0] < at - self.keep:
            self.samples.popleft()

    def at(self, t: datetime) -> float | None:
        """The register interpolated at ``t`` (None before the first sample)."""
        if not self.samples:
            return None
        times = [s[0] for s in self.samples]
        i = bisect.bisect_right(times, t)
        if i == 0:
            return None
        t0, r0 = self.samples[i - 1]
        if i == len(self.samples):
            return r0
        t1, r1 = self.samples[i]
        if r1 < r0:  # a reset between samples: do not interpolate across it
            return r0
        span = (t1 - t0).total_seconds()
        return r0 + (r1 - r0) * (t - t0).total_seconds() / span if span else r0

    def delivered(self, start: datetime, end: datetime) -> float:
        a = self.at(start)
        if a is None and self.samples:
            a = self.samples[0][1]
        b = self.at(end)
        if a is None or b is None:
            return 0.0
        return max(0.0, b - a)


@dataclass
class SiteMeter:
    meter: str
    grid: PowerIntegrator = field(default_factory=PowerIntegrator)
    ev: dict[str, RegisterIntegrator] = field(default_factory=dict)

    def sample_grid(self, at: datetime, grid_w: float) -> None:
        self.grid.sample(at, grid_w)

    def sample_ev(self, device_id: str, at: datetime, register_kwh: float) -> None:
        self.ev.setdefault(device_id, RegisterIntegrator()).sample(at, register_kwh)

    def pop_closed(self, now: datetime) -> list[ReadingRow]:
        """Readings for every half-hour that has closed, rounded to the stored precision."""
        rows: list[ReadingRow] = []
        for register, acc in (("import", self.grid.imports), ("export", self.grid.exports)):
            for start, kwh in acc.pop_closed(now).items():
                rows.append(ReadingRow(self.meter, start, register, _kwh(kwh)))
        ev_total: dict[datetime, float] = {}
        for integ in self.ev.values():
            for start, kwh in integ.acc.pop_closed(now).items():
                ev_total[start] = ev_total.get(start, 0.0) + kwh
        for start, kwh in ev_total.items():
            rows.append(ReadingRow(self.meter, start, "ev", _kwh(kwh)))
        return sorted(rows, key=lambda r: (r.start, r.register))

    # Persisted each cycle so a restart loses no part of an open half-hour.
    def dump(self) -> str:
        def acc(a: HalfHourAccumulator) -> dict[str, float]:
            return {ts(k): v for k, v in a.kwh.items()}

        doc: dict[str, Any] = {
            "import": acc(self.grid.imports),
            "export": acc(self.grid.exports),
            "grid_last": None
            if self.grid._last is None
            else [ts(self.grid._last[0]), self.grid._last[1]],
            "ev": {
                dev: {
                    "acc": acc(i.acc),
                    "last": None if i._last is None else [ts(i._last[0]), i._last[1]],
                }
                for dev, i in self.ev.items()
            },
        }
        return json.dumps(doc)

    def load(self, text: str) -> None:
        doc = json.loads(text)
        self.grid.imports.kwh = {parse_ts(k): v for k, v in doc["import"].items()}
        self.grid.exports.kwh = {parse_ts(k): v for k, v in doc["export"].items()}
        if doc["grid_last"]:
            self.grid._last = (parse_ts(doc["grid_last"][0]), float(doc["grid_last"][1]))
        for dev, e in doc["ev"].items():
            integ = RegisterIntegrator()
            integ.acc.kwh = {parse_ts(k): v for k, v in e["acc"].items()}
            if e["last"]:
                integ._last = (parse_ts(e["last"][0]), float(e["last"][1]))
            self.ev[dev] = integ


def _kwh(value: float) -> Decimal:
    return Decimal(repr(max(0.0, value))).quantize(KWH_PLACES, rounding=ROUND_HALF_EVEN)
