"""Plan dispatch intervals to OCPP 1.6 charging profiles (pure).

A profile is Absolute and starts now: a limit of 0 until the first period, in the gaps between
periods and after the last one (so the car charges only inside the periods; outside any
profile a charger would charge at full power), offsets aligned to the profile start, with
limits in W, or in A for 1 or 3 phases at a nominal voltage. Dicts use the snake_case keys
the ``ocpp`` library turns into OCPP's camelCase on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from devices.base import ChargePeriod

NOMINAL_V = 230.0
MAX_PROFILE_S = 48 * 3600


def limit_for(power_w: float, unit: str, phases: int, voltage: float = NOMINAL_V) -> float:
    if unit == "W":
        return round(power_w, 1)
    if unit == "A":
        return round(power_w / (voltage * phases), 1)
    raise ValueError(f"unit: {unit!r} is not W or A")


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_periods(
    periods: Sequence[ChargePeriod], now: datetime, unit: str = "W", phases: int = 1,
    voltage: float = NOMINAL_V,
) -> tuple[datetime, int, list[dict[str, Any]]]:  # fmt: skip
    """(start_schedule, duration_s, charging_schedule_period list) for timed periods."""
    live = sorted((p for p in periods if p.end > now), key=lambda p: p.start)
    start = now.replace(microsecond=0)
    out: list[dict[str, Any]] = []
    cursor = start
    for p in live:
        s = max(p.start, start)
        if s > cursor:
            out.append({"start_period": int((cursor - start).total_seconds()), "limit": 0.0,
                        "number_phases": phases})  # fmt: skip
        lim = limit_for(p.power_w, unit, phases, voltage)
        offset = int((s - start).total_seconds())
        if out and out[-1]["start_period"] == offset:
            out[-1]["limit"] = lim
        elif not out or out[-1]["limit"] != lim:
            out.append({"start_period": offset, "limit": lim, "number_phases": phases})
        cursor = max(cursor, p.end)
    end_offset = int((cursor - start).total_seconds())
    if not out or out[-1]["limit"] != 0.0:
        out.append({"start_period": end_offset, "limit": 0.0, "number_phases": phases})
    # The zero limit after the last period holds for the profile's whole life (48 h): outside
    # its duration a charger would fall back to charging at full power.
    duration = max(MAX_PROFILE_S, end_offset + 60)
    return start, duration, out


def _profile(
    kind: str, schedule: dict[str, Any], profile_id: int, transaction_id: int | None,
    stack_level: int,
) -> dict[str, Any]:  # fmt: skip
    """The profile envelope: a TxProfile bound to the running transaction, else the charger's
    TxDefaultProfile (which then applies to the next session too)."""
    profile: dict[str, Any] = {
        "charging_profile_id": profile_id,
        "stack_level": stack_level,
        "charging_profile_purpose": "TxProfile" if transaction_id is not None
        else "TxDefaultProfile",
        "charging_profile_kind": kind,
        "charging_schedule": schedule,
    }  # fmt: skip
    if transaction_id is not None:
        profile["transaction_id"] = transaction_id
    return profile


def charging_profile(
    periods: Sequence[ChargePeriod],
    now: datetime,
    *,
    profile_id: int,
    transaction_id: int | None,
    unit: str = "W",
    phases: int = 1,
    voltage: float = NOMINAL_V,
    stack_level: int = 1,
) -> dict[str, Any]:
    """An Absolute profile from now: the plan's periods, zero between and after them."""
    start, duration, sched = schedule_periods(periods, now, unit, phases, voltage)
    schedule = {
        "charging_rate_unit": unit,
        "start_schedule": _iso(start),
        "duration": duration,
        "charging_schedule_period": sched,
    }
    return _profile("Absolute", schedule, profile_id, transaction_id, stack_level)


def constant_profile(
    power_w: float, *, profile_id: int, transaction_id: int | None, unit: str = "W",
    phases: int = 1, voltage: float = NOMINAL_V, stack_level: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """A relative profile with one limit and no end: charge now, or pause with 0."""
    period = {"start_period": 0, "limit": limit_for(power_w, unit, phases, voltage),
              "number_phases": phases}  # fmt: skip
    schedule = {"charging_rate_unit": unit, "charging_schedule_period": [period]}
    return _profile("Relative", schedule, profile_id, transaction_id, stack_level)


def limit_at(
    profile: dict[str, Any], t: datetime, started_at: datetime | None = None
) -> float | None:
    """The profile's limit at instant ``t`` (None outside its schedule)."""
    sched = profile["charging_schedule"]
    if profile["charging_profile_kind"] == "Relative":
        base = started_at or t
    else:
        base = datetime.fromisoformat(sched["start_schedule"].replace("Z", "+00:00"))
    offset = (t - base).total_seconds()
    if offset < 0:
        return None
    duration = sched.get("duration")
    if duration is not None and offset >= duration:
        return None
    limit = None
    for p in sched["charging_schedule_period"]:
        if p["start_period"] <= offset:
            limit = float(p["limit"])
    return limit


def to_watts(limit: float, unit: str, phases: int, voltage: float = NOMINAL_V) -> float:
    return limit if unit == "W" else limit * voltage * phases
