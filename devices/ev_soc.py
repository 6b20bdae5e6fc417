"""Which state of charge to believe for the car, and where it came from. Pure: no clock, no I/O.

Order of trust: the charger's own SoC reading (OCPP SoC measurand, OpenEVSE ``battery_level``),
else the vehicle's cloud API, else the user's entered SoC plus the AC energy delivered since
plug-in times the charger-to-battery efficiency. A reading older than ``max_age`` is stale and
falls through to the next source, so a car that stopped reporting does not freeze the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from devices.base import SocSource


@dataclass(frozen=True, slots=True)
class SocReading:
    """One SoC value from a device, with the instant it was measured."""

    soc_pct: float
    measured_at: datetime

    def __post_init__(self) -> None:
        if not 0.0 <= self.soc_pct <= 100.0:
            raise ValueError(f"soc_pct: {self.soc_pct} is outside 0..100")
        if self.measured_at.tzinfo is None:
            raise ValueError("measured_at: must be timezone-aware")


@dataclass(frozen=True, slots=True)
class UserEntry:
    """The SoC the user entered for this session, and the energy delivered since plug-in.

    ``delivered_kwh`` is AC energy at the charger since plug-in (the session register), read at
    ``delivered_at``; ``efficiency`` is the share of it that reaches the battery.
    """

    soc_pct: float
    delivered_kwh: float
    delivered_at: datetime
    capacity_kwh: float
    efficiency: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 <= self.soc_pct <= 100.0:
            raise ValueError(f"soc_pct: {self.soc_pct} is outside 0..100")
        if self.delivered_kwh < 0:
            raise ValueError("delivered_kwh: must be >= 0")
        if self.capacity_kwh <= 0:
            raise ValueError("capacity_kwh: must be > 0")
        if not 0.0 < self.efficiency <= 1.0:
            raise ValueError("efficiency: must be within (0, 1]")
        if self.delivered_at.tzinfo is None:
            raise ValueError("delivered_at: must be timezone-aware")


@dataclass(frozen=True, slots=True)
class SocEstimate:
    """The SoC to use, its source, when it was measured and how old it is at ``now``."""

    soc_pct: float | None
    source: SocSource
    measured_at: datetime | None
    age_s: float | None


UNKNOWN = SocEstimate(None, SocSource.UNKNOWN, None, None)


def _age_s(now: datetime, at: datetime) -> float:
    # A reading stamped slightly in the future (device clock ahead) counts as fresh, not negative.
    return max(0.0, (now - at).total_seconds())


def choose_soc(
    now: datetime,
    *,
    charger: SocReading | None = None,
    vehicle: SocReading | None = None,
    user: UserEntry | None = None,
    max_age: timedelta = timedelta(minutes=30),
) -> SocEstimate:
    """Pick the freshest trusted SoC in the order charger, vehicle API, user estimate."""
    if now.tzinfo is None:
        raise ValueError("now: must be timezone-aware")
    limit_s = max_age.total_seconds()
    for source, reading in ((SocSource.CHARGER, charger), (SocSource.VEHICLE_API, vehicle)):
        if reading is None:
            continue
        age = _age_s(now, reading.measured_at)
        if age <= limit_s:
            return SocEstimate(reading.soc_pct, source, reading.measured_at, age)
    if user is not None:
        age = _age_s(now, user.delivered_at)
        if age <= limit_s:
            gained = 100.0 * user.delivered_kwh * user.efficiency / user.capacity_kwh
            soc = min(100.0, user.soc_pct + gained)
            return SocEstimate(soc, SocSource.ESTIMATE, user.delivered_at, age)
    return UNKNOWN
