"""An electric vehicle: battery, AC charge limit with a taper above ~80 %, plug events.

Stepped lazily against the injected clock like :mod:`simulator.world`. A charger simulator
asks :meth:`EV.offer` how much power the car takes at a given offered power.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.clock import Clock


@dataclass(frozen=True, slots=True)
class PlugEvent:
    at: datetime
    plugged_in: bool


@dataclass
class EV:
    clock: Clock
    capacity_kwh: float = 60.0
    soc_kwh: float = 20.0
    max_ac_w: float = 7400.0
    taper_from_pct: float = 80.0
    plugged_in: bool = False
    accepts_charge: bool = True  # False: the car refuses charge (SuspendedEV), e.g. a fault
    reports_soc: bool = True
    events: list[PlugEvent] = field(default_factory=list)
    step_s: float = 60.0
    delivered_kwh: float = 0.0  # AC energy into the car since creation
    offered_w: float = 0.0
    _t: datetime | None = None

    @property
    def soc_pct(self) -> float:
        return 100.0 * self.soc_kwh / self.capacity_kwh

    @property
    def full(self) -> bool:
        return self.soc_kwh >= self.capacity_kwh - 1e-6

    def acceptance_w(self) -> float:
        """Most AC power the car takes now: flat to the taper point, then linear to ~0 at 100 %."""
        if not (self.plugged_in and self.accepts_charge) or self.full:
            return 0.0
        pct = self.soc_pct
        if pct <= self.taper_from_pct:
            return self.max_ac_w
        span = 100.0 - self.taper_from_pct
        return max(1400.0, self.max_ac_w * (100.0 - pct) / span)

    def draw_w(self) -> float:
        """Power the car draws now, given what the charger offers."""
        return min(self.offered_w, self.acceptance_w())

    def set_offered(self, power_w: float) -> None:
        self.advance()
        self.offered_w = max(0.0, power_w)

    def plug(self, plugged_in: bool) -> None:
        self.advance()
        self.plugged_in = plugged_in

    def advance(self) -> datetime:
        now = self.clock.now()
        if self._t is None:
            # Events already due before the first step still happen (a plug-in while the
            # simulator was starting must not be skipped).
            self._t = now
            for ev in self.events:
                if ev.at <= now:
                    self.plugged_in = ev.plugged_in
        while self._t < now:
            step_end = min(now, self._t + timedelta(seconds=self.step_s))
            for ev in [e for e in self.events if self._t < e.at <= step_end]:
                step_end = ev.at
                break
            h = (step_end - self._t).total_seconds() / 3600.0
            kwh = self.draw_w() / 1000.0 * h
            kwh = min(kwh, self.capacity_kwh - self.soc_kwh)
            self.soc_kwh += kwh
            self.delivered_kwh += kwh
            self._t = step_end
            for ev in [e for e in self.events if e.at == step_end]:
                self.plugged_in = ev.plugged_in
        return now
