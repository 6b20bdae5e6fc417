"""Half-hourly energy from telemetry: power samples or energy registers, split at :00/:30.

Power is integrated sample-and-hold (each sample's power holds until the next sample), which is
what a polling daemon can know; a gap longer than ``max_gap_s`` is not bridged, so an offline
device under-reports rather than inventing energy. Registers (monotonic kWh counters) are
preferred where a device has one, since they lose nothing between polls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.timegrid import SLOT as HALF_HOUR
from core.timegrid import half_hour_start


@dataclass
class HalfHourAccumulator:
    """kWh per half-hour start, for one register."""

    kwh: dict[datetime, float] = field(default_factory=dict)

    def add_span(self, start: datetime, end: datetime, kw: float) -> None:
        """Add constant power ``kw`` over [start, end), split at half-hour boundaries."""
        t = start
        while t < end:
            slot = half_hour_start(t)
            stop = min(end, slot + HALF_HOUR)
            self.kwh[slot] = self.kwh.get(slot, 0.0) + kw * (stop - t).total_seconds() / 3600
            t = stop

    def add_energy(self, start: datetime, end: datetime, kwh: float) -> None:
        """Spread ``kwh`` evenly over [start, end)."""
        hours = (end - start).total_seconds() / 3600
        if hours > 0:
            self.add_span(start, end, kwh / hours)

    def closed(self, now: datetime) -> dict[datetime, float]:
        """Every half-hour that ended at or before ``now`` (left in place: see :meth:`drop`)."""
        return {s: v for s, v in self.kwh.items() if s + HALF_HOUR <= now}

    def drop(self, starts: set[datetime]) -> None:
        """Forget these half-hours, once they are stored."""
        for s in starts:
            self.kwh.pop(s, None)

    def pop_closed(self, now: datetime) -> dict[datetime, float]:
        """Remove and return every half-hour that ended at or before ``now``."""
        closed = self.closed(now)
        self.drop(set(closed))
        return closed


@dataclass
class PowerIntegrator:
    """Turns signed grid power samples (W, > 0 importing) into import and export kWh."""

    max_gap_s: float = 900.0
    imports: HalfHourAccumulator = field(default_factory=HalfHourAccumulator)
    exports: HalfHourAccumulator = field(default_factory=HalfHourAccumulator)
    _last: tuple[datetime, float] | None = None

    def sample(self, at: datetime, grid_w: float) -> None:
        if self._last is not None:
            t0, w0 = self._last
            if t0 < at and (at - t0).total_seconds() <= self.max_gap_s:
                if w0 > 0:
                    self.imports.add_span(t0, at, w0 / 1000)
                elif w0 < 0:
                    self.exports.add_span(t0, at, -w0 / 1000)
        if self._last is None or at >= self._last[0]:
            self._last = (at, grid_w)


@dataclass
class RegisterIntegrator:
    """Turns a monotonic kWh register into kWh per half-hour (spread between readings)."""

    max_gap_s: float = 3600.0
    max_kw: float = 100.0  # a jump implying more than this is a re-based register, not energy
    acc: HalfHourAccumulator = field(default_factory=HalfHourAccumulator)
    _last: tuple[datetime, float] | None = None

    def sample(self, at: datetime, register_kwh: float) -> None:
        if self._last is not None:
            t0, r0 = self._last
            gap = (at - t0).total_seconds()
            delta = register_kwh - r0
            # A register that went backwards was reset (new session or charger reboot); one that
            # jumped impossibly far was first read as 0 or swapped: neither is energy.
            if 0 < gap <= self.max_gap_s and 0 <= delta <= self.max_kw * gap / 3600:
                self.acc.add_energy(t0, at, delta)
        if self._last is None or at >= self._last[0]:
            self._last = (at, register_kwh)
