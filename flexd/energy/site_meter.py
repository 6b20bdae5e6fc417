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

from flexd.energy.integrators import HalfHourAccumulator, PowerIntegrator, RegisterIntegrator
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
    """Half-hourly grid and EV energy for one meter. Grid energy comes from the meter's
    import/export registers when the inverter reports them, else from power samples."""

    meter: str
    grid: PowerIntegrator = field(default_factory=PowerIntegrator)
    ev: dict[str, RegisterIntegrator] = field(default_factory=dict)
    reg_import: RegisterIntegrator = field(default_factory=RegisterIntegrator)
    reg_export: RegisterIntegrator = field(default_factory=RegisterIntegrator)
    use_registers: bool = False

    def sample_grid(
        self, at: datetime, grid_w: float, import_kwh: float | None = None,
        export_kwh: float | None = None,
    ) -> None:  # fmt: skip
        if import_kwh is not None and export_kwh is not None:
            self.use_registers = True
            self.reg_import.sample(at, import_kwh)
            self.reg_export.sample(at, export_kwh)
        else:
            self.grid.sample(at, grid_w)

    def sample_ev(self, device_id: str, at: datetime, register_kwh: float) -> None:
        self.ev.setdefault(device_id, RegisterIntegrator()).sample(at, register_kwh)

    def _horizon(self, now: datetime) -> datetime:
        """Energy is complete up to the oldest latest sample among live sources: a half-hour is
        closed only once every source has reported past its end (a source silent for 15
        minutes no longer holds the others back)."""
        lasts = [i._last[0] for i in self.ev.values() if i._last is not None]
        for src in (self.reg_import, self.reg_export) if self.use_registers else (self.grid,):
            if src._last is not None:
                lasts.append(src._last[0])
        live = [t for t in lasts if now - t <= timedelta(minutes=15)]
        return min([now, *live])

    def _accumulators(self) -> list[tuple[str, HalfHourAccumulator]]:
        imp, exp = self.grid.imports, self.grid.exports
        if self.use_registers:
            imp, exp = self.reg_import.acc, self.reg_export.acc
        return [("import", imp), ("export", exp)] + [("ev", i.acc) for i in self.ev.values()]

    def closed(self, now: datetime) -> list[ReadingRow]:
        """Readings for every half-hour that has closed, rounded to the stored precision. They
        stay here until :meth:`stored` says they are in the database: a failed write loses
        nothing, and the next cycle writes them again."""
        now = self._horizon(now)
        rows: list[ReadingRow] = []
        ev_total: dict[datetime, float] = {}
        for register, acc in self._accumulators():
            for start, kwh in acc.closed(now).items():
                if register == "ev":
                    ev_total[start] = ev_total.get(start, 0.0) + kwh
                else:
                    rows.append(ReadingRow(self.meter, start, register, _kwh(kwh)))
        for start, kwh in ev_total.items():
            rows.append(ReadingRow(self.meter, start, "ev", _kwh(kwh)))
        return sorted(rows, key=lambda r: (r.start, r.register))

    def stored(self, rows: list[ReadingRow]) -> None:
        """Forget the half-hours of ``rows``: they are committed."""
        starts = {r.start for r in rows}
        for _register, acc in self._accumulators():
            acc.drop(starts)

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
            "ev": {dev: _dump_reg(i) for dev, i in self.ev.items()},
            "reg_import": _dump_reg(self.reg_import),
            "reg_export": _dump_reg(self.reg_export),
            "use_registers": self.use_registers,
        }
        return json.dumps(doc)

    def load(self, text: str) -> None:
        doc = json.loads(text)
        self.grid.imports.kwh = {parse_ts(k): v for k, v in doc["import"].items()}
        self.grid.exports.kwh = {parse_ts(k): v for k, v in doc["export"].items()}
        if doc["grid_last"]:
            self.grid._last = (parse_ts(doc["grid_last"][0]), float(doc["grid_last"][1]))
        for dev, e in doc["ev"].items():
            self.ev[dev] = _load_reg(e)
        if "reg_import" in doc:
            self.reg_import = _load_reg(doc["reg_import"])
            self.reg_export = _load_reg(doc["reg_export"])
            self.use_registers = bool(doc["use_registers"])


def _dump_reg(i: RegisterIntegrator) -> dict[str, Any]:
    return {
        "acc": {ts(k): v for k, v in i.acc.kwh.items()},
        "last": None if i._last is None else [ts(i._last[0]), i._last[1]],
    }


def _load_reg(doc: dict[str, Any]) -> RegisterIntegrator:
    integ = RegisterIntegrator()
    integ.acc.kwh = {parse_ts(k): v for k, v in doc["acc"].items()}
    if doc["last"]:
        integ._last = (parse_ts(doc["last"][0]), float(doc["last"][1]))
    return integ


def _kwh(value: float) -> Decimal:
    return Decimal(repr(max(0.0, value))).quantize(KWH_PLACES, rounding=ROUND_HALF_EVEN)
