"""A :class:`Schedule` from per-slot arrays, with the same cost accounting for every path
(HiGHS, the exact battery DP, the EV greedy), so objectives compare like for like."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from optimiser.model import CURTAIL_P, SHORTFALL_P, TIE_BREAK_P, UNSERVED_P, WEAR_P
from optimiser.problem import Problem
from optimiser.schedule import Costs, EvPlan, Schedule, dispatch_intervals

F64 = npt.NDArray[np.float64]
EPS = 1e-6


def costs_of(
    p: Problem, imp: F64, exp: F64, curt: F64, unserved: F64, bd: F64, soc: F64,
    ev_charge: Sequence[F64], shortfall: Sequence[float],
) -> Costs:  # fmt: skip
    """Every term of the model's objective (see optimiser.model), split for the schedule."""
    n = p.n
    tie = sum(float(np.dot(TIE_BREAK_P * (np.arange(n) + 1), c)) for c in ev_charge)
    return costs_from_sums(
        p, float(np.dot(p.import_price_p, imp)), float(np.dot(p.export_price_p, exp)), imp,
        float(sum(shortfall)), float(unserved.sum()), float(soc[-1]), tie, float(bd.sum()),
        float(curt.sum()),
    )  # fmt: skip


def costs_from_sums(
    p: Problem, import_p: float, export_p: float, imp: F64, shortfall_kwh: float,
    unserved_kwh: float, soc_end: float, tie: float, discharge_kwh: float, curtailed_kwh: float,
) -> Costs:  # fmt: skip
    """:func:`costs_of` from the plan's dot products and sums (``imp`` for the carbon term):
    a compiled path computes them in its kernel (optimiser.battery_dp)."""
    carbon = 0.0
    if p.carbon_g_per_kwh is not None and p.carbon_weight_p_per_kg:
        carbon = float(np.dot(p.carbon_weight_p_per_kg * p.carbon_g_per_kwh / 1000.0, imp))
    terminal = p.battery.value_p_per_kwh * soc_end if p.battery is not None else 0.0
    return Costs(
        import_p=import_p,
        export_p=export_p,
        carbon_p=carbon,
        shortfall_penalty_p=SHORTFALL_P * shortfall_kwh,
        unserved_penalty_p=UNSERVED_P * unserved_kwh,
        terminal_value_p=terminal,
        small_terms_p=tie + WEAR_P * discharge_kwh + CURTAIL_P * curtailed_kwh,
    )


def objective_of(c: Costs) -> float:
    return (
        c.import_p - c.export_p + c.carbon_p + c.shortfall_penalty_p + c.unserved_penalty_p
        + c.small_terms_p - c.terminal_value_p
    )  # fmt: skip


def assemble(
    p: Problem,
    *,
    imp: F64,
    exp: F64,
    curt: F64,
    unserved: F64,
    bc: F64,
    bd: F64,
    soc: F64,
    ev_charge: Sequence[F64] = (),
    ev_soc: Sequence[F64] = (),
    shortfall: Sequence[float] = (),
    solver: str,
    mip: bool = False,
    objective: float | None = None,
    notes: Sequence[str] = (),
) -> Schedule:
    """The schedule; ``objective`` defaults to the model objective recomputed from the arrays."""
    costs = costs_of(p, imp, exp, curt, unserved, bd, soc, ev_charge, shortfall)
    evs = tuple(
        EvPlan(ev.id, c, s, short, dispatch_intervals(p.start, p.slot_minutes, c))
        for ev, c, s, short in zip(p.evs, ev_charge, ev_soc, shortfall, strict=True)
    )
    out_notes = list(notes)
    if unserved.sum() > EPS:
        out_notes.insert(
            0, f"{unserved.sum():.3f} kWh of load exceeds what the site limits can serve"
        )
    return Schedule(
        status="feasible" if unserved.sum() > EPS else "optimal",
        objective_p=objective_of(costs) if objective is None else objective,
        costs=costs, start=p.start, slot_minutes=p.slot_minutes, grid_import_kwh=imp,
        grid_export_kwh=exp, battery_charge_kwh=bc, battery_discharge_kwh=bd,
        battery_soc_kwh=soc if p.battery is not None else np.zeros(p.n),
        pv_curtailed_kwh=curt, unserved_kwh=unserved, evs=evs, solver=solver, mip=mip,
        notes=tuple(out_notes),
    )  # fmt: skip


def assemble_battery(
    p: Problem, imp: F64, exp: F64, curt: F64, unserved: F64, bc: F64, bd: F64, soc: F64,
    sums: Sequence[float], solver: str,
) -> Schedule:  # fmt: skip
    """:func:`assemble` for a plan without EVs whose ``sums`` (unserved, discharged and
    curtailed kWh) a compiled kernel computed in numpy's order: the same Schedule, without a
    numpy call per sum (issue 15: most of a 48-slot battery plan's time was such calls around
    a DP kernel of a few microseconds)."""
    unserved_kwh, discharge_kwh, curtailed_kwh = sums
    costs = costs_from_sums(
        p, float(np.dot(p.import_price_p, imp)), float(np.dot(p.export_price_p, exp)), imp,
        0.0, unserved_kwh, float(soc[-1]), 0, discharge_kwh, curtailed_kwh,
    )  # fmt: skip
    short = unserved_kwh > EPS
    return Schedule(
        "feasible" if short else "optimal", objective_of(costs), costs, p.start, p.slot_minutes,
        imp, exp, bc, bd, soc, curt, unserved, (), solver, False,
        (f"{unserved_kwh:.3f} kWh of load exceeds what the site limits can serve",) if short
        else (),
    )  # fmt: skip
