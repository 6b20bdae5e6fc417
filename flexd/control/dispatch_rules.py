"""Pure rules that turn a site plan into device commands (the dispatcher sends them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from devices.base import BatteryMode, ChargePeriod, ChargeProfile, SetBatteryMode

# Below this a planned energy is noise from the LP, not an instruction.
EPS_KWH = 0.01


@dataclass(frozen=True, slots=True)
class PlanSlot:
    start: datetime
    hours: float
    grid_import_kwh: float
    grid_export_kwh: float
    battery_charge_kwh: float
    battery_discharge_kwh: float
    load_kwh: float
    pv_kwh: float
    ev_kwh: float


def inverter_command(
    slot: PlanSlot, modes: frozenset[BatteryMode] = frozenset(BatteryMode)
) -> SetBatteryMode:
    """The plan's mode for this slot, or self-use where the device cannot do that mode."""
    cmd = _plan_mode(slot)
    return cmd if cmd.mode in modes else SetBatteryMode(BatteryMode.SELF_USE)


def _plan_mode(slot: PlanSlot) -> SetBatteryMode:
    """The battery mode that makes the inverter do what the plan wants in this slot.

    Self-use already does the right thing whenever the plan only moves PV surplus into the
    battery or covers the house from it, so forced modes are used only where self-use would
    differ: charging from the grid, exporting from the battery, or holding charge for later.
    """
    surplus = slot.pv_kwh - slot.load_kwh - slot.ev_kwh
    if slot.battery_charge_kwh > EPS_KWH and slot.battery_charge_kwh > surplus + EPS_KWH:
        return SetBatteryMode(BatteryMode.FORCE_CHARGE, _w(slot.battery_charge_kwh, slot.hours))
    if slot.battery_discharge_kwh > EPS_KWH and slot.grid_export_kwh > EPS_KWH:
        return SetBatteryMode(
            BatteryMode.FORCE_DISCHARGE, _w(slot.battery_discharge_kwh, slot.hours)
        )
    if slot.battery_discharge_kwh <= EPS_KWH and surplus < -EPS_KWH:
        return SetBatteryMode(BatteryMode.HOLD)
    return SetBatteryMode(BatteryMode.SELF_USE)


def _w(kwh: float, hours: float) -> float:
    return round(kwh / hours * 1000.0, 0)


def charge_profile(
    starts: Sequence[datetime],
    ev_kwh: Sequence[float],
    slot_hours: float,
    max_w: float,
    horizon: timedelta = timedelta(hours=24),
) -> ChargeProfile:
    """Charging periods for the planned EV energy per slot; adjacent equal powers merge."""
    periods: list[ChargePeriod] = []
    if not starts:
        return ChargeProfile(())
    limit = starts[0] + horizon
    step = timedelta(hours=slot_hours)
    for t, kwh in zip(starts, ev_kwh, strict=True):
        if t >= limit or kwh <= EPS_KWH:
            continue
        power = min(max_w, _w(kwh, slot_hours))
        last = periods[-1] if periods else None
        if last is not None and last.end == t and last.power_w == power:
            periods[-1] = ChargePeriod(last.start, t + step, power)
        else:
            periods.append(ChargePeriod(t, t + step, power))
    return ChargeProfile(tuple(periods))
