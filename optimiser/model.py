"""The joint site LP as sparse matrices (pure numpy/scipy), ready for HiGHS.

Columns (per slot t unless noted): grid import, grid export, PV curtailment, unserved load;
battery charge, discharge, SoC (end of slot); per EV charge, SoC (end of slot), and one
shortfall column. Binary columns are appended only for what needs them (see ``Binaries``).

Objective (pence): import_price*import - export_price*export + carbon_weight*carbon*import,
plus small documented terms:
- ``TIE_BREAK_P``: EV charge in slot t costs t*1e-7 p/kWh more, so equal-price slots go to the
  earlier one and late slack remains;
- ``WEAR_P``: 0.001 p per kWh discharged, so the battery does not cycle for nothing;
- ``CURTAIL_P``: 0.0001 p per kWh of PV curtailed (only when it cannot be used or exported);
- ``SHORTFALL_P``: 1000 p per kWh an EV ends short of its target (a soft target: never infeasible);
- ``UNSERVED_P``: 10000 p per kWh of load the site limits cannot serve (a bad forecast must not
  make the plan infeasible);
- minus the battery's terminal value per kWh left at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from core.timegrid import LONDON
from optimiser.problem import Problem

TIE_BREAK_P = 1e-7
WEAR_P = 1e-3
CURTAIL_P = 1e-4
SHORTFALL_P = 1000.0
UNSERVED_P = 10000.0

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Binaries:
    """Which disjunctions get binary variables (slots for grid/battery; EV indices)."""

    grid_slots: tuple[int, ...] = ()
    battery_slots: tuple[int, ...] = ()
    ev_on: tuple[int, ...] = ()  # EVs whose charging needs an on/off binary (cap, min power)

    @property
    def any(self) -> bool:
        return bool(self.grid_slots or self.battery_slots or self.ev_on)


@dataclass
class Layout:
    n: int
    imp: int = 0
    exp: int = 0
    curt: int = 0
    unserved: int = 0
    bc: int = -1
    bd: int = -1
    soc: int = -1
    ev_c: list[int] = field(default_factory=list)
    ev_soc: list[int] = field(default_factory=list)
    ev_short: list[int] = field(default_factory=list)
    y_grid: int = -1
    y_bat: int = -1
    ev_z: dict[int, int] = field(default_factory=dict)
    num_col: int = 0


@dataclass
class LpModel:
    layout: Layout
    cost: F64
    col_lower: F64
    col_upper: F64
    a: sp.csc_matrix | None  # None when built for a warm re-solve (numbers only)
    row_lower: F64
    row_upper: F64
    integrality: npt.NDArray[np.int8]
    balance_rows: slice
    battery_rows: slice | None
    binaries: Binaries


def midday_periods(problem: Problem) -> I64:
    """For each slot, its local (Europe/London) midday-to-midday period as a day number."""
    out = np.empty(problem.n, dtype=np.int64)
    for i in range(problem.n):
        local = problem.slot_start(i).astimezone(LONDON)
        out[i] = (local - timedelta(hours=12)).date().toordinal()
    return out


def matrix_key(p: Problem) -> tuple[object, ...]:
    """Everything the LP matrix (no binaries) depends on: equal keys, equal matrices. Prices,
    loads, SoC, limits, plug-in times and pins are bounds or costs, not coefficients."""
    b = p.battery
    return (
        p.n, p.slot_minutes,
        None if b is None else (b.charge_efficiency, b.discharge_efficiency),
        tuple(
            (e.efficiency, p.ready_index(e), min(e.target_soc_kwh, e.capacity_kwh) > e.soc_kwh)
            for e in p.evs
        ),
    )  # fmt: skip


def _layout(p: Problem, bins: Binaries) -> Layout:
    n = p.n
    lay = Layout(n=n)
    k = 0

    def take(size: int) -> int:
        nonlocal k
        start = k
        k += size
        return start

    lay.imp, lay.exp, lay.curt, lay.unserved = take(n), take(n), take(n), take(n)
    if p.battery is not None:
        lay.bc, lay.bd, lay.soc = take(n), take(n), take(n)
    for _ in p.evs:
        lay.ev_c.append(take(n))
        lay.ev_soc.append(take(n))
        lay.ev_short.append(take(1))
    if bins.grid_slots:
        lay.y_grid = take(n)
    if bins.battery_slots and p.battery is not None:
        lay.y_bat = take(n)
    for e in bins.ev_on:
        lay.ev_z[e] = take(n)
    lay.num_col = k
    return lay


def build(p: Problem, bins: Binaries = Binaries(), matrix: bool = True) -> LpModel:
    """The model; ``matrix=False`` computes costs and bounds only, for a live model whose
    matrix is known to be the same (see :func:`matrix_key`)."""
    n, h = p.n, p.slot_hours
    lay = _layout(p, bins)
    N = lay.num_col
    cost = np.zeros(N)
    lo = np.zeros(N)
    up = np.full(N, np.inf)
    integ = np.zeros(N, dtype=np.int8)
    t = np.arange(n)
    surplus = np.maximum(p.pv_kwh - p.load_kwh, 0.0)

    imp_cost = p.import_price_p.copy()
    if p.carbon_g_per_kwh is not None and p.carbon_weight_p_per_kg:
        imp_cost += p.carbon_weight_p_per_kg * p.carbon_g_per_kwh / 1000.0
    cost[lay.imp : lay.imp + n] = imp_cost
    cost[lay.exp : lay.exp + n] = -p.export_price_p
    cost[lay.curt : lay.curt + n] = CURTAIL_P
    cost[lay.unserved : lay.unserved + n] = UNSERVED_P
    up[lay.imp : lay.imp + n] = p.grid.import_kw * h
    up[lay.exp : lay.exp + n] = p.grid.export_kw * h
    up[lay.curt : lay.curt + n] = p.pv_kwh
    up[lay.unserved : lay.unserved + n] = p.load_kwh

    rows: list[I64] = []
    cols: list[I64] = []
    vals: list[F64] = []
    rlo: list[F64] = []
    rup: list[F64] = []
    nrow = 0

    def add(r: I64, c: I64, v: F64 | float) -> None:
        if not matrix:
            return
        rows.append(np.asarray(r, dtype=np.int64))
        cols.append(np.asarray(c, dtype=np.int64))
        vals.append(np.broadcast_to(np.asarray(v, dtype=np.float64), np.shape(r)).copy())

    def new_rows(lower: F64 | float, upper: F64 | float, count: int) -> I64:
        nonlocal nrow
        r = np.arange(nrow, nrow + count, dtype=np.int64)
        rlo.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (count,)).copy())
        rup.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (count,)).copy())
        nrow += count
        return r

    # Energy balance: import - export + discharge - charge - sum(ev) - curtail + unserved
    #                 = load - pv
    net = p.load_kwh - p.pv_kwh
    bal = new_rows(net, net, n)
    balance_rows = slice(0, n)
    add(bal, lay.imp + t, 1.0)
    add(bal, lay.exp + t, -1.0)
    add(bal, lay.curt + t, -1.0)
    add(bal, lay.unserved + t, 1.0)

    battery_rows = None
    b = p.battery
    if b is not None:
        ch_up = np.full(n, b.charge_kw * h)
        if not b.grid_charge:
            ch_up = np.minimum(ch_up, surplus)
        up[lay.bc : lay.bc + n] = ch_up
        up[lay.bd : lay.bd + n] = b.discharge_kw * h
        lo[lay.soc : lay.soc + n] = b.min_soc_kwh
        up[lay.soc : lay.soc + n] = b.max_soc
        lo[lay.soc + n - 1] = max(b.min_soc_kwh, b.final_min)
        cost[lay.bd : lay.bd + n] = WEAR_P
        cost[lay.soc + n - 1] = -b.value_p_per_kwh
        if not b.grid_export:
            up[lay.exp : lay.exp + n] = np.minimum(up[lay.exp : lay.exp + n], surplus)
        add(bal, lay.bd + t, 1.0)
        add(bal, lay.bc + t, -1.0)
        # SoC dynamics: soc[t] - soc[t-1] - eta_c*charge[t] + discharge[t]/eta_d = 0
        rhs = np.zeros(n)
        rhs[0] = b.soc_kwh
        dyn = new_rows(rhs, rhs, n)
        battery_rows = slice(int(dyn[0]), int(dyn[-1]) + 1)
        add(dyn, lay.soc + t, 1.0)
        add(dyn[1:], lay.soc + t[:-1], -1.0)
        add(dyn, lay.bc + t, -b.charge_efficiency)
        add(dyn, lay.bd + t, 1.0 / b.discharge_efficiency)

    for e_i, ev in enumerate(p.evs):
        c0, s0, sh = lay.ev_c[e_i], lay.ev_soc[e_i], lay.ev_short[e_i]
        plugged = np.asarray(ev.plugged_in, dtype=bool)
        up[c0 : c0 + n] = np.where(plugged, ev.max_charge_kw * h, 0.0)
        cost[c0 : c0 + n] = TIE_BREAK_P * (t + 1)
        up[s0 : s0 + n] = ev.capacity_kwh
        cost[sh] = SHORTFALL_P
        add(bal, c0 + t, -1.0)
        rhs = np.zeros(n)
        rhs[0] = ev.soc_kwh
        dyn = new_rows(rhs, rhs, n)
        add(dyn, s0 + t, 1.0)
        add(dyn[1:], s0 + t[:-1], -1.0)
        add(dyn, c0 + t, -ev.efficiency)
        k = p.ready_index(ev)
        target = min(ev.target_soc_kwh, ev.capacity_kwh)
        if k >= 1 and target > ev.soc_kwh:
            r = new_rows(target, np.inf, 1)
            add(r, np.array([s0 + k - 1]), 1.0)
            add(r, np.array([sh]), 1.0)
            up[sh] = target - ev.soc_kwh
        else:
            up[sh] = 0.0

    if lay.y_grid >= 0:
        g = np.asarray(bins.grid_slots, dtype=np.int64)
        integ[lay.y_grid : lay.y_grid + n] = 1
        up[lay.y_grid : lay.y_grid + n] = 1.0
        r = new_rows(-np.inf, 0.0, g.size)  # import <= Imax * y
        add(r, lay.imp + g, 1.0)
        add(r, lay.y_grid + g, -p.grid.import_kw * h)
        r = new_rows(-np.inf, p.grid.export_kw * h, g.size)  # export <= Emax * (1 - y)
        add(r, lay.exp + g, 1.0)
        add(r, lay.y_grid + g, p.grid.export_kw * h)
    if lay.y_bat >= 0 and b is not None:
        g = np.asarray(bins.battery_slots, dtype=np.int64)
        integ[lay.y_bat : lay.y_bat + n] = 1
        up[lay.y_bat : lay.y_bat + n] = 1.0
        r = new_rows(-np.inf, 0.0, g.size)
        add(r, lay.bc + g, 1.0)
        add(r, lay.y_bat + g, -b.charge_kw * h)
        r = new_rows(-np.inf, b.discharge_kw * h, g.size)
        add(r, lay.bd + g, 1.0)
        add(r, lay.y_bat + g, b.discharge_kw * h)
    for e_i, z0 in lay.ev_z.items():
        ev = p.evs[e_i]
        c0 = lay.ev_c[e_i]
        integ[z0 : z0 + n] = 1
        up[z0 : z0 + n] = np.where(np.asarray(ev.plugged_in), 1.0, 0.0)
        r = new_rows(-np.inf, 0.0, n)  # charge <= Pmax * z
        add(r, c0 + t, 1.0)
        add(r, z0 + t, -ev.max_charge_kw * h)
        if ev.min_charge_kw > 0:
            r = new_rows(0.0, np.inf, n)  # charge >= Pmin * z
            add(r, c0 + t, 1.0)
            add(r, z0 + t, -ev.min_charge_kw * h)
        if ev.max_charge_slots_per_day is not None:
            periods = midday_periods(p)
            for per in np.unique(periods):
                members = t[periods == per]
                r = new_rows(-np.inf, float(ev.max_charge_slots_per_day), 1)
                add(np.repeat(r, members.size), z0 + members, 1.0)

    pin = p.first_slot
    if pin is not None:
        # Pinned values are clipped into the column's bounds so a pin never makes it infeasible.
        def fix(col: int, value: float | None) -> None:
            if col >= 0 and value is not None:
                v = min(max(value, lo[col]), up[col])
                lo[col] = up[col] = v

        fix(lay.bc, pin.battery_charge_kwh)
        fix(lay.bd, pin.battery_discharge_kwh)
        wanted = dict(pin.ev_charge_kwh)
        for e_i, ev in enumerate(p.evs):
            fix(lay.ev_c[e_i], wanted.get(ev.id))

    a = None
    if matrix:
        a = sp.csc_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nrow, N)
        )
    return LpModel(
        layout=lay, cost=cost, col_lower=lo, col_upper=up, a=a,
        row_lower=np.concatenate(rlo), row_upper=np.concatenate(rup), integrality=integ,
        balance_rows=balance_rows, battery_rows=battery_rows, binaries=bins,
    )  # fmt: skip
