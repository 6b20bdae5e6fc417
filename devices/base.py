"""The device interfaces every adapter implements, and the values that cross them.

Sign conventions, written down once for the whole project:
- ``grid_w`` > 0 is importing from the grid, < 0 exporting.
- ``battery_w`` > 0 is discharging (battery supplies the site), < 0 charging.
- ``pv_w`` >= 0 and ``load_w`` >= 0 always.
- So, at every instant: pv_w + grid_w + battery_w == load_w (give or take meter error).
Power in W, energy in kWh, SoC in percent of usable capacity, instants tz-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable


class BatteryMode(StrEnum):
    SELF_USE = "self-use"  # cover the house from PV then battery, charge from surplus PV
    HOLD = "hold"  # keep the SoC where it is: no discharge, PV surplus may still charge
    FORCE_CHARGE = "force-charge"  # charge from the grid at up to power_w
    FORCE_DISCHARGE = "force-discharge"  # discharge to the grid at up to power_w
    ECO = "eco"  # the vendor's own economy/time-of-use mode


@dataclass(frozen=True, slots=True)
class InverterState:
    measured_at: datetime
    battery_soc_pct: float
    battery_capacity_kwh: float
    battery_w: float
    pv_w: float
    grid_w: float
    load_w: float
    mode: BatteryMode
    reserve_pct: float
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # The grid meter's lifetime energy registers, where the device has them: metering then
    # loses nothing between polls.
    grid_import_kwh: float | None = None
    grid_export_kwh: float | None = None


# --- inverter commands: a closed set -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetBatteryMode:
    mode: BatteryMode
    power_w: float | None = None  # required for FORCE_CHARGE / FORCE_DISCHARGE

    def __post_init__(self) -> None:
        forced = self.mode in (BatteryMode.FORCE_CHARGE, BatteryMode.FORCE_DISCHARGE)
        if forced and (self.power_w is None or self.power_w <= 0):
            raise ValueError(f"power_w: {self.mode} needs a positive power")
        if not forced and self.power_w is not None:
            raise ValueError(f"power_w: {self.mode} takes no power")


@dataclass(frozen=True, slots=True)
class SetReserve:
    reserve_pct: float

    def __post_init__(self) -> None:
        if not 0 <= self.reserve_pct <= 100:
            raise ValueError("reserve_pct: must be within 0..100")


@dataclass(frozen=True, slots=True)
class ModeWindow:
    start: datetime
    end: datetime
    mode: BatteryMode
    power_w: float | None = None

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("end: must be after start")


@dataclass(frozen=True, slots=True)
class SetSchedule:
    windows: tuple[ModeWindow, ...]


InverterCommand = SetBatteryMode | SetReserve | SetSchedule


# --- chargers ------------------------------------------------------------------------------


class ChargerStatus(StrEnum):
    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    FAULTED = "Faulted"
    UNAVAILABLE = "Unavailable"


class SocSource(StrEnum):
    CHARGER = "charger"
    VEHICLE_API = "vehicle-api"
    ESTIMATE = "estimate"  # user-entered SoC plus energy delivered since plug-in
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ChargerState:
    measured_at: datetime
    plugged_in: bool
    charging_w: float
    session_kwh: float
    energy_register_kwh: float
    status: ChargerStatus
    soc_pct: float | None = None
    soc_source: SocSource = SocSource.UNKNOWN
    soc_measured_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # The charger's own id for the charging session (OCPP's transactionId), where it has one: a
    # command bound to a session must be sent again when the session changes.
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChargePeriod:
    start: datetime
    end: datetime
    power_w: float  # 0 means paused in this period

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("end: must be after start")
        if self.power_w < 0:
            raise ValueError("power_w: must be >= 0")


@dataclass(frozen=True, slots=True)
class ChargeProfile:
    """Charge at up to each period's power inside it, and not at all outside every period."""

    periods: tuple[ChargePeriod, ...]


@dataclass(frozen=True, slots=True)
class ChargeNow:
    power_w: float | None = None  # None: as fast as the charger allows


@dataclass(frozen=True, slots=True)
class StopCharging:
    pass


ChargerCommand = ChargeProfile | ChargeNow | StopCharging


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a device did with a command, from reading it back after the write."""

    command: object
    honoured: bool
    detail: str = ""


# --- the interfaces -------------------------------------------------------------------------


def battery_modes(adapter: object) -> frozenset[BatteryMode]:
    """The battery modes an adapter can put its device in: ``battery_modes`` where the brand
    lacks some (a Powerwall cannot export at a set power), else all of them."""
    modes = getattr(adapter, "battery_modes", None)
    return modes if isinstance(modes, frozenset) else frozenset(BatteryMode)


@runtime_checkable
class InverterAdapter(Protocol):
    brand: ClassVar[str]

    async def read_state(self) -> InverterState: ...

    async def apply(self, command: InverterCommand) -> CommandResult:
        """Write the command, read the device back, and say whether it was honoured."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class ChargerAdapter(Protocol):
    brand: ClassVar[str]

    async def read_state(self) -> ChargerState: ...

    async def apply(self, command: ChargerCommand) -> CommandResult: ...

    async def close(self) -> None: ...
