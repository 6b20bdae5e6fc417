"""The solved plan: typed, with the schedule.json contract and EV dispatch intervals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
EPS_KWH = 1e-6


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t.utcoffset() == timedelta(0) else t.isoformat()


@dataclass(frozen=True, slots=True)
class Dispatch:
    start: datetime
    end: datetime
    kwh: float

    def to_json(self) -> dict[str, Any]:
        return {"start": _iso(self.start), "end": _iso(self.end), "kwh": round(self.kwh, 6)}


@dataclass(frozen=True, slots=True)
class EvPlan:
    id: str
    charge_kwh: F64
    soc_kwh: F64
    shortfall_kwh: float
    dispatches: tuple[Dispatch, ...]


@dataclass(frozen=True, slots=True)
class Costs:
    import_p: float
    export_p: float  # revenue, positive
    carbon_p: float
    shortfall_penalty_p: float
    unserved_penalty_p: float
    terminal_value_p: float
    small_terms_p: float  # tie-break, wear, curtailment

    @property
    def net_grid_p(self) -> float:
        return self.import_p - self.export_p


@dataclass(frozen=True, slots=True)
class Schedule:
    status: str  # optimal | feasible | infeasible-input
    objective_p: float
    costs: Costs
    start: datetime
    slot_minutes: int
    grid_import_kwh: F64
    grid_export_kwh: F64
    battery_charge_kwh: F64
    battery_discharge_kwh: F64
    battery_soc_kwh: F64
    pv_curtailed_kwh: F64
    unserved_kwh: F64
    evs: tuple[EvPlan, ...] = ()
    solver: str = "highs"
    mip: bool = False
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        r = lambda a: [round(float(x), 6) for x in a]  # noqa: E731
        c = self.costs
        return {
            "status": self.status,
            "objective_p": round(self.objective_p, 6),
            "solver": self.solver,
            "mip": self.mip,
            "start": _iso(self.start),
            "slot_minutes": self.slot_minutes,
            "costs": {
                "import_p": round(c.import_p, 4),
                "export_p": round(c.export_p, 4),
                "net_grid_p": round(c.net_grid_p, 4),
                "carbon_p": round(c.carbon_p, 4),
                "shortfall_penalty_p": round(c.shortfall_penalty_p, 4),
                "unserved_penalty_p": round(c.unserved_penalty_p, 4),
                "terminal_value_p": round(c.terminal_value_p, 4),
                "small_terms_p": round(c.small_terms_p, 6),
            },
            "grid_import_kwh": r(self.grid_import_kwh),
            "grid_export_kwh": r(self.grid_export_kwh),
            "battery_charge_kwh": r(self.battery_charge_kwh),
            "battery_discharge_kwh": r(self.battery_discharge_kwh),
            "battery_soc_kwh": r(self.battery_soc_kwh),
            "pv_curtailed_kwh": r(self.pv_curtailed_kwh),
            "unserved_kwh": r(self.unserved_kwh),
            "evs": [
                {
                    "id": e.id,
                    "charge_kwh": r(e.charge_kwh),
                    "soc_kwh": r(e.soc_kwh),
                    "shortfall_kwh": round(e.shortfall_kwh, 6),
                    "dispatches": [d.to_json() for d in e.dispatches],
                }
                for e in self.evs
            ],
            "notes": list(self.notes),
        }


def dispatch_intervals(
    start: datetime, slot_minutes: int, charge: F64, eps: float = EPS_KWH
) -> tuple[Dispatch, ...]:
    """Contiguous charging slots as (start, end, kWh) intervals."""
    out: list[Dispatch] = []
    step = timedelta(minutes=slot_minutes)
    run_start: int | None = None
    kwh = 0.0
    for i, x in enumerate([*charge.tolist(), 0.0]):
        if x > eps:
            if run_start is None:
                run_start, kwh = i, 0.0
            kwh += x
        elif run_start is not None:
            out.append(Dispatch(start + run_start * step, start + i * step, kwh))
            run_start = None
    return tuple(out)
