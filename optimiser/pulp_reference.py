"""The same model written readably with PuLP: the reference the HiGHS path is checked against,
the source of ``--export-lp`` files, and an alternative solver (PuLP's bundled CBC).

Binaries are placed where the data can make a disjunction bind: grid import/export where the
export price is at least the import price, charge/discharge where the import price is negative,
and EV on/off where a slot cap or a minimum power applies. Elsewhere breaking a disjunction only
loses money, so the LP already respects it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pulp

from optimiser.model import (
    CURTAIL_P,
    SHORTFALL_P,
    TIE_BREAK_P,
    UNSERVED_P,
    WEAR_P,
    midday_periods,
)
from optimiser.problem import Problem
from optimiser.schedule import Costs, EvPlan, Schedule, dispatch_intervals


def build_pulp(p: Problem) -> tuple[pulp.LpProblem, dict[str, list[pulp.LpVariable]]]:
    n, h = p.n, p.slot_hours
    T = range(n)
    prob = pulp.LpProblem("flexd_site", pulp.LpMinimize)
    surplus = np.maximum(p.pv_kwh - p.load_kwh, 0.0)

    def V(name: str, lo: float, up: list[float]) -> list[pulp.LpVariable]:
        return [pulp.LpVariable(f"{name}_{t}", lo, up[t]) for t in T]

    imp = V("import", 0, [p.grid.import_kw * h] * n)
    exp_up = [p.grid.export_kw * h] * n
    b = p.battery
    if b is not None and not b.grid_export:
        exp_up = [min(exp_up[t], surplus[t]) for t in T]
    exp = V("export", 0, exp_up)
    curt = V("curtail", 0, list(p.pv_kwh))
    unserved = V("unserved", 0, list(p.load_kwh))
    vars_: dict[str, list[pulp.LpVariable]] = {
        "import": imp, "export": exp, "curtail": curt, "unserved": unserved,
    }  # fmt: skip
    import_cost = p.import_price_p.copy()
    if p.carbon_g_per_kwh is not None and p.carbon_weight_p_per_kg:
        import_cost = import_cost + p.carbon_weight_p_per_kg * p.carbon_g_per_kwh / 1000.0
    objective = pulp.lpSum(
        float(import_cost[t]) * imp[t] - float(p.export_price_p[t]) * exp[t]
        + CURTAIL_P * curt[t] + UNSERVED_P * unserved[t]
        for t in T
    )  # fmt: skip
    ev_terms = {t: [] for t in T}  # type: dict[int, list[pulp.LpVariable]]
    for t in T:
        if p.export_price_p[t] >= p.import_price_p[t]:
            y = pulp.LpVariable(f"y_import_{t}", cat="Binary")
            prob += imp[t] <= p.grid.import_kw * h * y
            prob += exp[t] <= p.grid.export_kw * h * (1 - y)
    bc: list[pulp.LpVariable] = []
    bd: list[pulp.LpVariable] = []
    soc: list[pulp.LpVariable] = []
    if b is not None:
        ch_up = [b.charge_kw * h if b.grid_charge else min(b.charge_kw * h, surplus[t]) for t in T]
        bc = V("charge", 0, ch_up)
        bd = V("discharge", 0, [b.discharge_kw * h] * n)
        soc = V("soc", b.min_soc_kwh, [b.max_soc] * n)
        soc[-1].lowBound = max(b.min_soc_kwh, b.final_min)
        vars_ |= {"charge": bc, "discharge": bd, "soc": soc}
        for t in T:
            prev = b.soc_kwh if t == 0 else soc[t - 1]
            prob += (
                soc[t] == prev + b.charge_efficiency * bc[t] - bd[t] * (1 / b.discharge_efficiency),
                f"soc_{t}",
            )
            # Charging and discharging at once can pay in ways no simple price test foresees
            # (burning energy in the losses at negative prices, dodging a curtailment, working
            # round a discharge limit), so the reference forbids it in every slot: it is the
            # exact model HiGHS's LP-then-binaries path is checked against.
            y = pulp.LpVariable(f"y_charge_{t}", cat="Binary")
            prob += bc[t] <= b.charge_kw * h * y
            prob += bd[t] <= b.discharge_kw * h * (1 - y)
        objective += pulp.lpSum(WEAR_P * bd[t] for t in T) - b.value_p_per_kwh * soc[-1]
    periods = midday_periods(p)
    for e_i, ev in enumerate(p.evs):
        c = V(f"ev{e_i}_charge", 0, [ev.max_charge_kw * h if ev.plugged_in[t] else 0.0 for t in T])
        s = V(f"ev{e_i}_soc", 0, [ev.capacity_kwh] * n)
        k = p.ready_index(ev)
        target = min(ev.target_soc_kwh, ev.capacity_kwh)
        need = max(0.0, target - ev.soc_kwh) if k >= 1 else 0.0
        short = pulp.LpVariable(f"ev{e_i}_shortfall", 0, need)
        vars_ |= {f"ev{e_i}_charge": c, f"ev{e_i}_soc": s, f"ev{e_i}_shortfall": [short]}
        for t in T:
            prev = ev.soc_kwh if t == 0 else s[t - 1]
            prob += s[t] == prev + ev.efficiency * c[t], f"ev{e_i}_soc_{t}"
            ev_terms[t].append(c[t])
        if need > 0:
            prob += s[k - 1] + short >= target, f"ev{e_i}_target"
        objective += SHORTFALL_P * short + pulp.lpSum(TIE_BREAK_P * (t + 1) * c[t] for t in T)
        if ev.max_charge_slots_per_day is not None or ev.min_charge_kw > 0:
            z = [pulp.LpVariable(f"ev{e_i}_on_{t}", cat="Binary") for t in T]
            for t in T:
                prob += c[t] <= (ev.max_charge_kw * h if ev.plugged_in[t] else 0.0) * z[t]
                if ev.min_charge_kw > 0:
                    prob += c[t] >= ev.min_charge_kw * h * z[t]
            if ev.max_charge_slots_per_day is not None:
                for per in np.unique(periods):
                    prob += (
                        pulp.lpSum(z[t] for t in T if periods[t] == per)
                        <= ev.max_charge_slots_per_day
                    )
    for t in T:
        battery = (bd[t] - bc[t]) if b is not None else 0
        prob += (
            (
                float(p.pv_kwh[t]) - curt[t] + imp[t] + battery + unserved[t]
                == float(p.load_kwh[t]) + pulp.lpSum(ev_terms[t]) + exp[t]
            ),
            f"balance_{t}",
        )
    prob += objective
    return prob, vars_


def export_lp(p: Problem, path: Path) -> None:
    prob, _ = build_pulp(p)
    prob.writeLP(str(path))


def solve_pulp(p: Problem) -> Schedule:
    prob, v = build_pulp(p)
    prob.solve(pulp.PULP_CBC_CMD(msg=False, gapRel=1e-9))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"CBC: {pulp.LpStatus[prob.status]}")
    n = p.n
    val = lambda name: np.array([x.value() or 0.0 for x in v[name]]) if name in v else np.zeros(n)  # noqa: E731
    imp, exp, curt, unserved = val("import"), val("export"), val("curtail"), val("unserved")
    bc, bd, soc = val("charge"), val("discharge"), val("soc")
    evs = []
    short_pen = tie = 0.0
    for e_i, ev in enumerate(p.evs):
        c = val(f"ev{e_i}_charge")
        short = float(v[f"ev{e_i}_shortfall"][0].value() or 0.0)
        short_pen += SHORTFALL_P * short
        tie += float(np.dot(TIE_BREAK_P * (np.arange(n) + 1), c))
        evs.append(
            EvPlan(
                ev.id, c, val(f"ev{e_i}_soc"), short, dispatch_intervals(p.start, p.slot_minutes, c)
            )
        )
    carbon = 0.0
    if p.carbon_g_per_kwh is not None and p.carbon_weight_p_per_kg:
        carbon = float(np.dot(p.carbon_weight_p_per_kg * p.carbon_g_per_kwh / 1000.0, imp))
    b = p.battery
    costs = Costs(
        import_p=float(np.dot(p.import_price_p, imp)), export_p=float(np.dot(p.export_price_p, exp)),
        carbon_p=carbon, shortfall_penalty_p=short_pen, unserved_penalty_p=UNSERVED_P * float(unserved.sum()),
        terminal_value_p=b.value_p_per_kwh * float(soc[-1]) if b is not None else 0.0,
        small_terms_p=tie + WEAR_P * float(bd.sum()) + CURTAIL_P * float(curt.sum()),
    )  # fmt: skip
    return Schedule(
        status="feasible" if unserved.sum() > 1e-6 else "optimal",
        objective_p=float(pulp.value(prob.objective)), costs=costs, start=p.start,
        slot_minutes=p.slot_minutes, grid_import_kwh=imp, grid_export_kwh=exp,
        battery_charge_kwh=bc, battery_discharge_kwh=bd, battery_soc_kwh=soc,
        pv_curtailed_kwh=curt, unserved_kwh=unserved, evs=tuple(evs), solver="cbc",
        mip=any(x.cat == "Integer" for x in prob.variables()),
    )  # fmt: skip
