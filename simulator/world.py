"""One world model per simulated site: battery, PV, house load and the grid meter.

The world is stepped lazily: every read or write first integrates from the last step to the
clock's ``now()``, so the protocol front-ends never need a background task and simulated time
(a :class:`core.clock.ManualClock` or ``ScaledClock``) drives it exactly.
Sign conventions are those of :mod:`devices.base` (grid_w > 0 importing, battery_w > 0
discharging).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.clock import Clock
from core.timegrid import LONDON
from devices.base import BatteryMode

PowerProfile = Callable[[datetime], float]


def default_pv_w(peak_w: float = 4000.0) -> PowerProfile:
    """A clear-sky-ish bell around 12:15 GMT whose height and length follow the season
    (about 8 h and a quarter of the peak at midwinter, 16 h and the full peak at midsummer)."""

    def pv(t: datetime) -> float:
        utc = t.astimezone(UTC)
        summer = 0.5 - 0.5 * math.cos(2 * math.pi * (utc.timetuple().tm_yday - 355) / 365.25)
        half_day = 4.0 + 4.0 * summer
        h = utc.hour + utc.minute / 60 + utc.second / 3600 - 12.25
        if abs(h) >= half_day:
            return 0.0
        return peak_w * (0.25 + 0.75 * summer) * math.cos(math.pi / 2 * h / half_day) ** 2

    return pv


def default_load_w(base_w: float = 350.0) -> PowerProfile:
    """A house with a morning and a larger evening bump."""

    def load(t: datetime) -> float:
        local = t.astimezone(LONDON)
        h = local.hour + local.minute / 60
        morning = 900 * math.exp(-(((h - 7.5) / 1.0) ** 2))
        evening = 1500 * math.exp(-(((h - 18.5) / 1.5) ** 2))
        return base_w + morning + evening

    return load


@dataclass
class Battery:
    capacity_kwh: float = 9.5
    soc_kwh: float = 4.75
    max_charge_w: float = 3000.0
    max_discharge_w: float = 3000.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95

    @property
    def soc_pct(self) -> float:
        return 100.0 * self.soc_kwh / self.capacity_kwh


@dataclass(frozen=True, slots=True)
class ScheduledMode:
    start: datetime
    end: datetime
    mode: BatteryMode
    power_w: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: datetime
    battery_soc_pct: float
    battery_w: float
    pv_w: float
    grid_w: float
    load_w: float
    mode: BatteryMode
    reserve_pct: float
    import_kwh: float
    export_kwh: float
    pv_kwh: float
    load_kwh: float


@dataclass
class SiteWorld:
    clock: Clock
    battery: Battery = field(default_factory=Battery)
    pv: PowerProfile = field(default_factory=default_pv_w)
    load: PowerProfile = field(default_factory=default_load_w)
    mode: BatteryMode = BatteryMode.SELF_USE
    power_w: float | None = None
    reserve_pct: float = 4.0
    export_limit_w: float = 5000.0
    schedule: list[ScheduledMode] = field(default_factory=list)
    step_s: float = 60.0
    import_kwh: float = 0.0
    export_kwh: float = 0.0
    pv_kwh: float = 0.0
    load_kwh: float = 0.0
    _t: datetime | None = None
    _last: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    # --- commands (what a protocol front-end calls after decoding a write) -----------------

    def set_mode(self, mode: BatteryMode, power_w: float | None = None) -> None:
        self.advance()
        self.mode = mode
        self.power_w = power_w

    def set_reserve(self, pct: float) -> None:
        self.advance()
        self.reserve_pct = max(0.0, min(100.0, pct))

    def set_schedule(self, windows: list[ScheduledMode]) -> None:
        self.advance()
        self.schedule = sorted(windows, key=lambda w: w.start)

    # --- reading ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        now = self.advance()
        battery_w, pv_w, grid_w, load_w = self._last
        return Snapshot(
            at=now,
            battery_soc_pct=self.battery.soc_pct,
            battery_w=battery_w,
            pv_w=pv_w,
            grid_w=grid_w,
            load_w=load_w,
            mode=self.effective_mode(now)[0],
            reserve_pct=self.reserve_pct,
            import_kwh=self.import_kwh,
            export_kwh=self.export_kwh,
            pv_kwh=self.pv_kwh,
            load_kwh=self.load_kwh,
        )

    def effective_mode(self, t: datetime) -> tuple[BatteryMode, float | None]:
        for w in self.schedule:
            if w.start <= t < w.end:
                return w.mode, w.power_w
        return self.mode, self.power_w

    # --- physics ----------------------------------------------------------------------------

    def advance(self) -> datetime:
        """Integrate the world from the last step to the clock's now; return now."""
        now = self.clock.now()
        if self._t is None:
            self._t = now
            self._last = self._powers(now, 0.0)
            return now
        while self._t < now:
            dt = min(self.step_s, (now - self._t).total_seconds())
            self._last = self._powers(self._t, dt)
            self._t += timedelta(seconds=dt)
        return now

    def _powers(self, t: datetime, dt_s: float) -> tuple[float, float, float, float]:
        """Apply one step of dt_s seconds from t; return (battery_w, pv_w, grid_w, load_w)."""
        b = self.battery
        pv_w = max(0.0, self.pv(t))
        load_w = max(0.0, self.load(t))
        mode, power = self.effective_mode(t)
        reserve_kwh = b.capacity_kwh * self.reserve_pct / 100.0
        h = dt_s / 3600.0
        # Most energy the battery can take or give in this step, as AC power.
        room_w = (
            1000.0 * (b.capacity_kwh - b.soc_kwh) / b.charge_efficiency / h if h else b.max_charge_w
        )
        avail_w = (
            1000.0 * max(0.0, b.soc_kwh - reserve_kwh) * b.discharge_efficiency / h
            if h
            else b.max_discharge_w * (b.soc_kwh > reserve_kwh)
        )
        max_c = min(b.max_charge_w, max(0.0, room_w))
        max_d = min(b.max_discharge_w, avail_w)
        surplus = pv_w - load_w
        if mode == BatteryMode.FORCE_CHARGE:
            battery_w = -min(max_c, power or b.max_charge_w)
        elif mode == BatteryMode.FORCE_DISCHARGE:
            battery_w = min(max_d, power or b.max_discharge_w)
        elif mode == BatteryMode.HOLD:
            battery_w = -min(max_c, surplus) if surplus > 0 else 0.0
        else:  # SELF_USE and ECO behave alike in the simulator
            battery_w = -min(max_c, surplus) if surplus > 0 else min(max_d, -surplus)
        grid_w = load_w - pv_w - battery_w
        if grid_w < -self.export_limit_w:
            # Curtail PV first rather than break the export limit.
            pv_w = max(0.0, pv_w - (-grid_w - self.export_limit_w))
            grid_w = load_w - pv_w - battery_w
        if h:
            if battery_w < 0:
                gained = -battery_w / 1000.0 * h * b.charge_efficiency
                b.soc_kwh = min(b.capacity_kwh, b.soc_kwh + gained)
            else:
                b.soc_kwh = max(0.0, b.soc_kwh - battery_w / 1000.0 * h / b.discharge_efficiency)
            self.import_kwh += max(0.0, grid_w) / 1000.0 * h
            self.export_kwh += max(0.0, -grid_w) / 1000.0 * h
            self.pv_kwh += pv_w / 1000.0 * h
            self.load_kwh += load_w / 1000.0 * h
        return battery_w, pv_w, grid_w, load_w
