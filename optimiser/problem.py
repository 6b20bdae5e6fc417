"""The scheduling problem: typed, validated once, with every field's default documented.

Arrays have one entry per slot. Energies are AC-side kWh per slot; powers kW; prices p/kWh;
instants tz-aware. See README "flexd plan" for the JSON shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import FieldError

F64 = npt.NDArray[np.float64]


class ProblemError(FieldError):
    """A problem field that is missing or out of range."""

    field: str

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)


@dataclass(frozen=True, slots=True)
class Grid:
    import_kw: float = 15.0
    export_kw: float = 5.0


@dataclass(frozen=True, slots=True)
class Battery:
    capacity_kwh: float
    soc_kwh: float
    min_soc_kwh: float = 0.0  # the reserve: no plan goes below it
    max_soc_kwh: float | None = None  # default: capacity
    charge_kw: float = 3.0
    discharge_kw: float = 3.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    final_soc_kwh_min: float | None = None  # default: the initial SoC (capped to bounds)
    value_p_per_kwh: float = 0.0  # value of each kWh left at the end of the horizon
    grid_charge: bool = True
    grid_export: bool = True

    @property
    def max_soc(self) -> float:
        return self.capacity_kwh if self.max_soc_kwh is None else self.max_soc_kwh

    @property
    def final_min(self) -> float:
        want = self.soc_kwh if self.final_soc_kwh_min is None else self.final_soc_kwh_min
        return min(max(want, self.min_soc_kwh), self.max_soc)


@dataclass(frozen=True, slots=True)
class EV:
    id: str
    capacity_kwh: float
    soc_kwh: float
    target_soc_kwh: float
    ready_by: datetime
    max_charge_kw: float
    plugged_in: tuple[bool, ...]
    efficiency: float = 0.9
    min_charge_kw: float = 0.0  # a charger's minimum non-zero power (e.g. 6 A x 230 V)
    max_charge_slots_per_day: int | None = None  # per local midday-to-midday period


@dataclass(frozen=True, slots=True)
class FirstSlot:
    """Pins the first slot's decisions (kWh), so a re-plan can keep what is already running."""

    battery_charge_kwh: float | None = None
    battery_discharge_kwh: float | None = None
    ev_charge_kwh: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Problem:
    start: datetime
    slot_minutes: int
    import_price_p: F64
    export_price_p: F64
    load_kwh: F64
    pv_kwh: F64
    grid: Grid = field(default_factory=Grid)
    battery: Battery | None = None
    evs: tuple[EV, ...] = ()
    carbon_g_per_kwh: F64 | None = None
    carbon_weight_p_per_kg: float = 0.0
    first_slot: FirstSlot | None = None

    @property
    def n(self) -> int:
        return int(self.import_price_p.size)

    @property
    def slot_hours(self) -> float:
        return self.slot_minutes / 60.0

    def slot_start(self, i: int) -> datetime:
        return self.start + timedelta(minutes=self.slot_minutes * i)

    def ready_index(self, ev: EV) -> int:
        """Number of slots that end at or before the EV's ready-by instant."""
        return int((ev.ready_by - self.start).total_seconds() // (self.slot_minutes * 60))

    def __post_init__(self) -> None:
        validate(self)


def _num(doc: Mapping[str, Any], key: str, path: str, default: float | None = None) -> float:
    if key not in doc or doc[key] is None:
        if default is None:
            raise ProblemError(f"{path}{key}", "is required")
        return default
    v = doc[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ProblemError(f"{path}{key}", "must be a finite number")
    return float(v)


def _array(doc: Mapping[str, Any], key: str, n: int | None, default: float | None = None) -> F64:
    if key not in doc:
        if default is None or n is None:
            raise ProblemError(key, "is required")
        return np.full(n, default, dtype=np.float64)
    v = doc[key]
    if not isinstance(v, Sequence) or isinstance(v, str):
        raise ProblemError(key, "must be an array of numbers")
    for i, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ProblemError(f"{key}[{i}]", "must be a finite number")
    if n is not None and len(v) != n:
        raise ProblemError(key, f"has {len(v)} entries, expected {n} (one per slot)")
    return np.asarray(v, dtype=np.float64)


def _instant(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise ProblemError(field, "must be an ISO-8601 instant string")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ProblemError(field, f"{value!r} is not an ISO-8601 instant") from None
    if t.tzinfo is None:
        raise ProblemError(field, "must carry an offset (Z or +01:00)")
    return t


def _bool(doc: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    v = doc.get(key, default)
    if not isinstance(v, bool):
        raise ProblemError(f"{path}{key}", "must be true or false")
    return v


def parse_problem(doc: Any) -> Problem:
    """problem.json (already decoded) into a validated Problem; errors name the field."""
    if not isinstance(doc, Mapping):
        raise ProblemError("problem", "must be a JSON object")
    start = _instant(doc.get("start"), "start")
    slot = doc.get("slot_minutes", 30)
    if isinstance(slot, bool) or not isinstance(slot, int) or not 1 <= slot <= 240:
        raise ProblemError("slot_minutes", "must be an integer 1..240")
    imp = _array(doc, "import_price_p", None)
    n = imp.size
    if n == 0:
        raise ProblemError("import_price_p", "must have at least one slot")
    exp = _array(doc, "export_price_p", n, 0.0)
    load = _array(doc, "load_kwh", n, 0.0)
    pv = _array(doc, "pv_kwh", n, 0.0)
    g = doc.get("grid", {})
    if not isinstance(g, Mapping):
        raise ProblemError("grid", "must be an object")
    grid = Grid(_num(g, "import_kw", "grid.", 15.0), _num(g, "export_kw", "grid.", 5.0))
    battery = None
    b = doc.get("battery")
    if b is not None:
        if not isinstance(b, Mapping):
            raise ProblemError("battery", "must be an object")
        p = "battery."
        cap = _num(b, "capacity_kwh", p)
        battery = Battery(
            capacity_kwh=cap,
            soc_kwh=_num(b, "soc_kwh", p),
            min_soc_kwh=_num(b, "min_soc_kwh", p, 0.0),
            max_soc_kwh=_num(b, "max_soc_kwh", p, cap),
            charge_kw=_num(b, "charge_kw", p, 3.0),
            discharge_kw=_num(b, "discharge_kw", p, 3.0),
            charge_efficiency=_num(b, "charge_efficiency", p, 0.95),
            discharge_efficiency=_num(b, "discharge_efficiency", p, 0.95),
            final_soc_kwh_min=None if b.get("final_soc_kwh_min") is None
            else _num(b, "final_soc_kwh_min", p),
            value_p_per_kwh=_num(b, "value_p_per_kwh", p, 0.0),
            grid_charge=_bool(b, "grid_charge", p, True),
            grid_export=_bool(b, "grid_export", p, True),
        )  # fmt: skip
    evs = []
    raw_evs = doc.get("evs", [])
    if not isinstance(raw_evs, Sequence) or isinstance(raw_evs, str):
        raise ProblemError("evs", "must be an array")
    for i, e in enumerate(raw_evs):
        p = f"evs[{i}]."
        if not isinstance(e, Mapping):
            raise ProblemError(f"evs[{i}]", "must be an object")
        plugged = e.get("plugged_in", [True] * n)
        if not isinstance(plugged, Sequence) or len(plugged) != n:
            raise ProblemError(f"{p}plugged_in", f"must be an array of {n} booleans")
        if not all(isinstance(x, bool) for x in plugged):
            raise ProblemError(f"{p}plugged_in", "entries must be true or false")
        cap_slots = e.get("max_charge_slots_per_day")
        if cap_slots is not None and (
            isinstance(cap_slots, bool) or not isinstance(cap_slots, int) or cap_slots < 0
        ):
            raise ProblemError(
                f"{p}max_charge_slots_per_day", "must be a non-negative integer or null"
            )
        evs.append(EV(
            id=str(e.get("id", f"ev{i}")),
            capacity_kwh=_num(e, "capacity_kwh", p),
            soc_kwh=_num(e, "soc_kwh", p),
            target_soc_kwh=_num(e, "target_soc_kwh", p),
            ready_by=_instant(e.get("ready_by"), f"{p}ready_by"),
            max_charge_kw=_num(e, "max_charge_kw", p),
            plugged_in=tuple(plugged),
            efficiency=_num(e, "efficiency", p, 0.9),
            min_charge_kw=_num(e, "min_charge_kw", p, 0.0),
            max_charge_slots_per_day=cap_slots,
        ))  # fmt: skip
    carbon = _array(doc, "carbon_g_per_kwh", n) if "carbon_g_per_kwh" in doc else None
    return Problem(
        start=start, slot_minutes=slot, import_price_p=imp, export_price_p=exp, load_kwh=load,
        pv_kwh=pv, grid=grid, battery=battery, evs=tuple(evs), carbon_g_per_kwh=carbon,
        carbon_weight_p_per_kg=_num(doc, "carbon_weight_p_per_kg", "", 0.0),
    )  # fmt: skip


def validate(p: Problem) -> None:
    n = p.n
    if p.start.tzinfo is None:
        raise ProblemError("start", "must carry an offset")
    for name in ("export_price_p", "load_kwh", "pv_kwh"):
        arr = getattr(p, name)
        if arr.size != n:
            raise ProblemError(name, f"has {arr.size} entries, expected {n}")
        if not np.all(np.isfinite(arr)):
            raise ProblemError(name, "must be finite")
    if p.carbon_g_per_kwh is not None and p.carbon_g_per_kwh.size != n:
        raise ProblemError("carbon_g_per_kwh", f"expected {n} entries")
    if np.any(p.load_kwh < 0):
        raise ProblemError("load_kwh", "must be >= 0")
    if np.any(p.pv_kwh < 0):
        raise ProblemError("pv_kwh", "must be >= 0")
    if p.grid.import_kw < 0 or p.grid.export_kw < 0:
        raise ProblemError("grid", "limits must be >= 0")
    b = p.battery
    if b is not None:
        if b.capacity_kwh <= 0:
            raise ProblemError("battery.capacity_kwh", "must be > 0")
        if not 0 <= b.min_soc_kwh <= b.max_soc <= b.capacity_kwh:
            raise ProblemError("battery.min_soc_kwh", "need 0 <= min_soc <= max_soc <= capacity")
        if not b.min_soc_kwh <= b.soc_kwh <= b.max_soc:
            raise ProblemError("battery.soc_kwh", "must lie within min_soc_kwh..max_soc_kwh")
        for name in ("charge_efficiency", "discharge_efficiency"):
            if not 0 < getattr(b, name) <= 1:
                raise ProblemError(f"battery.{name}", "must be within (0, 1]")
        if b.charge_kw < 0 or b.discharge_kw < 0:
            raise ProblemError("battery.charge_kw", "power limits must be >= 0")
    ids = [e.id for e in p.evs]
    if len(set(ids)) != len(ids):
        raise ProblemError("evs", "ids must be unique")
    end = p.start + timedelta(minutes=p.slot_minutes * n)
    for i, e in enumerate(p.evs):
        f = f"evs[{i}]."
        if e.capacity_kwh <= 0:
            raise ProblemError(f"{f}capacity_kwh", "must be > 0")
        if not 0 <= e.soc_kwh <= e.capacity_kwh:
            raise ProblemError(f"{f}soc_kwh", "must lie within 0..capacity_kwh")
        if not 0 <= e.target_soc_kwh <= e.capacity_kwh:
            raise ProblemError(f"{f}target_soc_kwh", "must lie within 0..capacity_kwh")
        if not p.start < e.ready_by <= end:
            raise ProblemError(f"{f}ready_by", "must lie inside the horizon")
        if e.ready_by.tzinfo is None:
            raise ProblemError(f"{f}ready_by", "must carry an offset")
        if not 0 < e.efficiency <= 1:
            raise ProblemError(f"{f}efficiency", "must be within (0, 1]")
        if e.max_charge_kw < 0 or not 0 <= e.min_charge_kw <= e.max_charge_kw:
            raise ProblemError(f"{f}min_charge_kw", "need 0 <= min_charge_kw <= max_charge_kw")
        if len(e.plugged_in) != n:
            raise ProblemError(f"{f}plugged_in", f"expected {n} entries")
