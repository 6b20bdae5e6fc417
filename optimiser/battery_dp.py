"""The exact battery-only plan: a DP over convex piecewise-linear value functions ("slope
trick"), the LP's optimum without an LP solver.

Per slot, the cheapest way to serve a grid-side demand y is the infimal convolution of the
model's grid columns (curtail, export, import, unserved), a convex piecewise-linear G(y). The
battery turns a SoC change d into y = net + d/eta_c (charging) or net + d*eta_d (discharging,
plus the wear cost), so the slot's cost f(d) is piecewise linear too, and convex under the
conditions :func:`exact_conditions` checks (then charging and discharging in one slot never
pays, so the LP and the MIP agree). The value function V_t(s) = min_d f_t(d) + V_{t+1}(s + d)
is then the infimal convolution of V_{t+1} with f_t reflected, clipped to the SoC bounds:
merging two slope-sorted segment lists. A forward pass walks the stored merges to recover
each slot's SoC change. Every term of the model's objective is kept (wear, curtailment,
terminal value), so the objective equals HiGHS's to rounding (tests/optimiser/test_fast.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from optimiser.assemble import assemble_battery
from optimiser.model import CURTAIL_P, UNSERVED_P, WEAR_P
from optimiser.problem import Problem
from optimiser.schedule import Schedule

F64 = npt.NDArray[np.float64]
TINY = 1e-12
# Charging and discharging in one slot wastes (1 - eta_c*eta_d) of the energy and pays wear on
# the discharge; it could only pay by un-curtailing PV (CURTAIL_P per kWh), which needs
# CURTAIL_P*(1 - eta_c*eta_d) > WEAR_P*eta_c*eta_d, i.e. eta_c*eta_d < 1/11.
MIN_ROUND_TRIP = 0.1
_PW_BLOCK = 128  # numpy's PW_BLOCKSIZE: pairwise_sum sums up to this many in one block


def grid_costs(
    p: Problem, export_kwh: F64, import_kwh: F64 | None = None, load: F64 | None = None
) -> tuple[F64, F64, F64, F64]:
    """Per slot: the breakpoints (n, 5) and slopes (n, 4) of G(y), its left end and value there.

    Segment order (ascending slope when export <= import and both >= 0): un-curtail PV,
    stop exporting, import, unserved load."""
    h = p.slot_hours
    imp_cost = effective_import_price(p)
    pv = p.pv_kwh
    load = p.load_kwh if load is None else load
    if import_kwh is None:
        import_kwh = np.full(p.n, p.grid.import_kw * h)
    lens = np.stack([pv, export_kwh, import_kwh, load], axis=1)
    slopes = np.stack(
        [np.full(p.n, -CURTAIL_P), p.export_price_p, imp_cost, np.full(p.n, UNSERVED_P)], axis=1
    )
    left = -(export_kwh + pv)
    value_left = -p.export_price_p * export_kwh + CURTAIL_P * pv
    brk = left[:, None] + np.concatenate([np.zeros((p.n, 1)), np.cumsum(lens, axis=1)], axis=1)
    return brk, slopes, left, value_left


def effective_import_price(p: Problem) -> F64:
    if p.carbon_g_per_kwh is not None and p.carbon_weight_p_per_kg:
        return p.import_price_p + p.carbon_weight_p_per_kg * p.carbon_g_per_kwh / 1000.0
    return p.import_price_p


def split_grid(brk: F64, pv: F64, export_kwh: F64, y: F64) -> tuple[F64, F64, F64, F64]:
    """A cheapest (import, export, curtailed, unserved) for grid-side demand y, per slot."""
    taken = np.clip(y[:, None] - brk[:, :-1], 0.0, np.diff(brk, axis=1))
    curt = pv - taken[:, 0]
    exp = export_kwh - taken[:, 1]
    return taken[:, 2], np.maximum(exp, 0.0), np.maximum(curt, 0.0), taken[:, 3]


def exact_conditions(p: Problem) -> bool:
    """Where the DP is exact: the slot cost is convex and no disjunction can bind."""
    b = p.battery
    if b is None or p.evs:
        return False
    imp = effective_import_price(p)
    exp = p.export_price_p
    return bool(
        b.charge_efficiency * b.discharge_efficiency >= MIN_ROUND_TRIP
        and b.value_p_per_kwh >= 0 and exp.min() >= 0 and (imp - exp).min() >= 0
        and imp.max() < UNSERVED_P
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SlotCosts:
    """Per slot, the reflected cost g(x) = f(-x) of a SoC change as slope-sorted segments
    (n, 10): its left end, value there, lengths and slopes; and the grid side's breakpoints
    (n, 6) with each segment's origin (n, 5; see ``SEGMENTS``), sorted by slope."""

    r_len: F64
    r_slope: F64
    r_left: F64
    r_value_left: F64
    brk: F64
    tags: npt.NDArray[np.int64]


SEGMENTS = ("curtail", "export", "import", "unserved", "ev")


def slot_costs(
    p: Problem, load: F64, export_kwh: F64, import_kwh: F64, charge_kwh: F64,
    ev_kwh: F64 | None = None, ev_slope: F64 | None = None,
) -> SlotCosts | None:  # fmt: skip
    """The slot costs f_t of a SoC change; None where one is not convex. ``ev_kwh`` and
    ``ev_slope``: an EV that takes up to ev_kwh in the slot for ev_slope p/kWh less than it
    costs (a Lagrangian price on its target: optimiser.joint_dp)."""
    b = p.battery
    assert b is not None
    if ev_kwh is None or ev_slope is None:
        ev_kwh = ev_slope = np.zeros(p.n)
    r_len, r_slope, r_left, r_value_left, brk, tags, ok = _slot_costs(
        p.pv_kwh, load, export_kwh, import_kwh, charge_kwh, p.export_price_p,
        effective_import_price(p), ev_kwh, ev_slope, b.discharge_kw * p.slot_hours,
        b.charge_efficiency, b.discharge_efficiency,
    )  # fmt: skip
    if not ok:
        return None
    return SlotCosts(r_len, r_slope, r_left, r_value_left, brk, tags)


@njit(cache=True, nogil=True)
def _split(
    brk: F64, tags: npt.NDArray[np.int64], y: F64, pv: F64, export_kwh: F64, ev_kwh: F64
) -> tuple[F64, F64, F64, F64, F64]:
    n = y.size
    by = np.zeros((n, 5))
    for t in range(n):
        for q in range(5):
            seg = brk[t, q + 1] - brk[t, q]
            by[t, tags[t, q]] = min(max(y[t] - brk[t, q], 0.0), seg)
    imp = by[:, 2].copy()
    unserved = by[:, 3].copy()
    exp = np.maximum(export_kwh - by[:, 1], 0.0)
    curt = np.maximum(pv - by[:, 0], 0.0)
    ev = np.maximum(ev_kwh - by[:, 4], 0.0)
    return imp, exp, curt, unserved, ev


@njit(cache=True, nogil=True)
def _slot_costs(
    pv: F64, load: F64, export_kwh: F64, import_kwh: F64, charge_kwh: F64, export_p: F64,
    import_p: F64, ev_kwh: F64, ev_slope: F64, discharge_kwh: float, eta_c: float,
    eta_d: float,
) -> tuple[F64, F64, F64, F64, F64, npt.NDArray[np.int64], bool]:  # fmt: skip
    """Per slot: the grid side G(y) as five segments sorted by slope (un-curtail, stop
    exporting, import, unserved, and the EV's: at the left end it charges fully), cut at the
    slot's net load into the discharge side (d = (y - net)/eta_d, wear added) and the charge
    side (d = (y - net)*eta_c), then reflected (g(x) = f(-x)) for the merge."""
    n = pv.size
    r_len = np.zeros((n, 10))
    r_slope = np.zeros((n, 10))
    r_left = np.empty(n)
    r_value_left = np.empty(n)
    brk = np.empty((n, 6))
    tags = np.empty((n, 5), dtype=np.int64)
    lens = np.empty(5)
    slopes = np.empty(5)
    f_len = np.empty(10)
    f_slope = np.empty(10)
    ok = True
    for t in range(n):
        lens[0], lens[1], lens[2] = pv[t], export_kwh[t], import_kwh[t]
        lens[3], lens[4] = load[t], ev_kwh[t]
        slopes[0], slopes[1], slopes[2] = -CURTAIL_P, export_p[t], import_p[t]
        slopes[3], slopes[4] = UNSERVED_P, ev_slope[t]
        for q in range(5):
            tags[t, q] = q
        for q in range(1, 5):  # insertion sort by slope, stable
            j = q
            while j > 0 and slopes[tags[t, j - 1]] > slopes[tags[t, j]]:
                tags[t, j - 1], tags[t, j] = tags[t, j], tags[t, j - 1]
                j -= 1
        brk[t, 0] = -(export_kwh[t] + pv[t] + ev_kwh[t])
        for q in range(5):
            brk[t, q + 1] = brk[t, q] + lens[tags[t, q]]
        value_left = -export_p[t] * export_kwh[t] + CURTAIL_P * pv[t] - ev_slope[t] * ev_kwh[t]
        net = load[t] - pv[t]
        up = min(charge_kwh[t], brk[t, 5] - net)
        down = min(discharge_kwh, net - brk[t, 0])
        y0 = net - down
        g0 = value_left
        for q in range(5):
            g0 += slopes[tags[t, q]] * min(max(y0 - brk[t, q], 0.0), lens[tags[t, q]])
        for q in range(5):
            s = slopes[tags[t, q]]
            dis = min(brk[t, q + 1], net) - max(brk[t, q], y0)
            chg = min(brk[t, q + 1], net + up) - max(brk[t, q], net)
            f_len[q] = max(dis, 0.0) / eta_d
            f_slope[q] = eta_d * (s - WEAR_P)
            f_len[5 + q] = max(chg, 0.0) * eta_c
            f_slope[5 + q] = s / eta_c
        running = -np.inf
        total = 0.0
        for q in range(10):
            if f_len[q] > TINY:
                if f_slope[q] < running - 1e-12:
                    ok = False
                running = max(running, f_slope[q])
            total += f_len[q] * f_slope[q]
            r_len[t, 9 - q] = f_len[q]
            r_slope[t, 9 - q] = -f_slope[q]
        r_left[t] = -up * eta_c
        r_value_left[t] = g0 + WEAR_P * down + total
    return r_len, r_slope, r_left, r_value_left, brk, tags, ok


def grid_caps(p: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-slot kWh caps on export, import and battery charging. Where the battery may not
    export to, or charge from, the grid, those are capped at the PV surplus."""
    b = p.battery
    assert b is not None
    n, h = p.n, p.slot_hours
    surplus = np.maximum(p.pv_kwh - p.load_kwh, 0.0)
    export_kwh = np.full(n, p.grid.export_kw * h)
    charge_kwh = np.full(n, b.charge_kw * h)
    if not b.grid_export:
        export_kwh = np.minimum(export_kwh, surplus)
    if not b.grid_charge:
        charge_kwh = np.minimum(charge_kwh, surplus)
    return export_kwh, np.full(n, p.grid.import_kw * h), charge_kwh


def solve_battery(p: Problem) -> Schedule | None:
    """The exact plan for a battery-only problem, or None outside :func:`exact_conditions`
    (or when the problem is infeasible: HiGHS then says so).

    One compiled call (:func:`_plan`) checks the price conditions, builds the slot costs,
    runs the DP and splits the grid side: at 48 slots, the numpy calls that did this around
    the kernel took 4x the kernel's own time (issue 15)."""
    b = p.battery
    if b is None or p.evs:
        return None
    if not (b.charge_efficiency * b.discharge_efficiency >= MIN_ROUND_TRIP
            and b.value_p_per_kwh >= 0):  # fmt: skip
        return None  # the rest of exact_conditions is checked in _plan
    pin = p.first_slot
    pin_c = None if pin is None else pin.battery_charge_kwh
    pin_d = None if pin is None else pin.battery_discharge_kwh
    if (pin_c is None) != (pin_d is None):
        return None
    h = p.slot_hours
    lo_soc = b.min_soc_kwh
    out = np.empty((7, p.n))
    sums = np.empty(3)
    ok = _plan(
        p.pv_kwh, p.load_kwh, effective_import_price(p), p.export_price_p,
        p.grid.export_kw * h, p.grid.import_kw * h, b.charge_kw * h, b.discharge_kw * h,
        b.grid_export, b.grid_charge, b.charge_efficiency, b.discharge_efficiency, lo_soc,
        b.max_soc, max(lo_soc, b.final_min), b.value_p_per_kwh, b.soc_kwh, pin_c is not None,
        0.0 if pin_c is None else pin_c, 0.0 if pin_d is None else pin_d, out, sums,
    )  # fmt: skip
    if not ok:
        return None
    imp, exp, curt, unserved, bc, bd, soc = out
    return assemble_battery(
        p, imp, exp, curt, unserved, bc, bd, soc,
        sums.tolist(),
        "battery-dp",
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _plan(
    pv: F64, load: F64, imp_cost: F64, export_p: F64, export_cap: float,
    import_cap: float, charge_cap: float, discharge_kwh: float, grid_export: bool,
    grid_charge: bool, eta_c: float, eta_d: float, lo_soc: float, hi_soc: float,
    end_lo: float, end_value: float, soc_init: float, pinned: bool, pin_c: float,
    pin_d: float, out: F64, sums: F64,
) -> bool:  # fmt: skip
    """:func:`solve_battery`'s work in one call: writes the plan's rows (import, export,
    curtailed, unserved, charge, discharge, SoC) into ``out`` and into ``sums`` the unserved,
    discharged and curtailed totals (numpy's summation order, so the Schedule matches
    :func:`optimiser.assemble.assemble`'s to the bit; the price dot products stay numpy's:
    BLAS's order is the library's and the CPU's). False: decline (not exact, a non-convex
    slot, a pin off the grid or SoC bounds, infeasible SoC bounds)."""
    n = pv.size
    for t in range(n):  # exact_conditions' price part; NaN declines as there
        if not (export_p[t] >= 0 and imp_cost[t] - export_p[t] >= 0
                and imp_cost[t] < UNSERVED_P):  # fmt: skip
            return False
    export_kwh = np.full(n, export_cap)
    import_kwh = np.full(n, import_cap)
    charge_kwh = np.full(n, charge_cap)
    net = np.empty(n)
    for t in range(n):  # grid_caps
        net[t] = load[t] - pv[t]
        surplus = max(pv[t] - load[t], 0.0)
        if not grid_export:
            export_kwh[t] = min(export_kwh[t], surplus)
        if not grid_charge:
            charge_kwh[t] = min(charge_kwh[t], surplus)
    zeros = np.zeros(n)
    r_len, r_slope, r_left, r_value_left, brk, tags, convex = _slot_costs(
        pv, load, export_kwh, import_kwh, charge_kwh, export_p, imp_cost, zeros, zeros,
        discharge_kwh, eta_c, eta_d,
    )  # fmt: skip
    if not convex:
        return False  # a non-convex slot cost (never seen under exact_conditions): HiGHS
    first = 0
    soc0 = soc_init
    bc0 = bd0 = 0.0
    soc = out[6]
    if pinned:
        if np.isnan(pin_c) or np.isnan(pin_d):
            return False
        bc0 = min(max(pin_c, 0.0), charge_kwh[0])
        bd0 = min(max(pin_d, 0.0), discharge_kwh)
        y0 = net[0] + bc0 - bd0
        if not brk[0, 0] - 1e-9 <= y0 <= brk[0, 5] + 1e-9:
            return False
        soc0 = soc_init + eta_c * bc0 - bd0 / eta_d
        if not lo_soc - 1e-9 <= soc0 <= hi_soc + 1e-9:
            return False
        soc0 = min(max(soc0, lo_soc), hi_soc)
        soc[0] = soc0
        first = 1
    value = _value_dp(
        r_len, r_slope, r_left, r_value_left, first, lo_soc, hi_soc, end_lo, end_value, soc0,
        soc,
    )  # fmt: skip
    if np.isnan(value):
        return False  # infeasible SoC bounds: HiGHS reports it
    bc = out[4]
    bd = out[5]
    y = np.empty(n)
    prev = soc_init
    for t in range(n):
        d = soc[t] - prev
        prev = soc[t]
        bc[t] = d / eta_c if d > 0 else 0.0
        bd[t] = -d * eta_d if d < 0 else 0.0
    if pinned:
        bc[0], bd[0] = bc0, bd0
    for t in range(n):
        y[t] = net[t] + bc[t] - bd[t]
    imp, exp, curt, unserved, _ = _split(brk, tags, y, pv, export_kwh, zeros)
    out[0, :] = imp
    out[1, :] = exp
    out[2, :] = curt
    out[3, :] = unserved
    sums[0] = _np_sum(unserved)
    sums[1] = _np_sum(bd)
    sums[2] = _np_sum(curt)
    return True


@njit(cache=True, nogil=True)
def _np_sum(a: F64) -> float:
    """numpy's pairwise summation of ``a`` (numpy/_core/src/umath/loops_utils.h.src), term
    for term, so a compiled total equals ndarray.sum() to the bit. Its recursion runs on an
    explicit stack: numba's cache segfaulted loading a self-recursive function."""
    n = a.size
    if n <= _PW_BLOCK:
        return _pw_block(a, 0, n)
    f_lo = np.empty(64, dtype=np.int64)
    f_n = np.empty(64, dtype=np.int64)
    f_stage = np.empty(64, dtype=np.int64)
    vals = np.empty(64)
    f_lo[0], f_n[0], f_stage[0] = 0, n, 0
    top, nv = 1, 0
    while top > 0:
        lo, m, stage = f_lo[top - 1], f_n[top - 1], f_stage[top - 1]
        if m <= _PW_BLOCK:
            top -= 1
            vals[nv] = _pw_block(a, lo, m)
            nv += 1
            continue
        half = m // 2
        half -= half % 8
        if stage == 2:
            top -= 1
            vals[nv - 2] = vals[nv - 2] + vals[nv - 1]
            nv -= 1
            continue
        f_stage[top - 1] = stage + 1  # 0: push the left half; 1: the right half
        f_lo[top] = lo if stage == 0 else lo + half
        f_n[top] = half if stage == 0 else m - half
        f_stage[top] = 0
        top += 1
    return vals[0]


@njit(cache=True, nogil=True)
def _pw_block(a: F64, lo: int, n: int) -> float:
    """numpy's pairwise_sum for n <= 128: eight running sums, then the tail."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, nogil=True)  # compiled once, cached beside the module; GIL released
def _value_dp(
    r_len: F64, r_slope: F64, r_left: F64, r_value_left: F64, first: int, lo: float, hi: float,
    end_lo: float, end_value: float, soc0: float, soc: F64,
) -> float:  # fmt: skip
    """Backward merges of V_{t+1} with the reflected slot costs (kept for the forward pass),
    then the forward walk that writes the SoC path into ``soc``. Returns V(soc0), the optimal
    cost from the first free slot on (NaN: infeasible)."""
    n, k = r_len.shape
    cap = 1 + k * n
    w_len = np.empty(cap)
    w_slope = np.empty(cap)
    flat = (n - first) * cap
    m_len = np.empty(flat)
    m_w = np.empty(flat, dtype=np.bool_)
    m_off = np.zeros(n, dtype=np.int64)
    m_cnt = np.zeros(n, dtype=np.int64)
    m_a = np.zeros(n)
    m_aw = np.zeros(n)
    w_a = end_lo
    w_v = -end_value * end_lo
    w_n = 0
    if hi - end_lo > TINY:
        w_len[0] = hi - end_lo
        w_slope[0] = -end_value
        w_n = 1
    off = 0
    for t in range(n - 1, first - 1, -1):
        m_slope = np.empty(w_n + k)
        i = 0
        j = 0
        c = 0
        while i < w_n or j < k:
            if j < k and r_len[t, j] <= TINY:
                j += 1
                continue
            # Ties go to this slot's segment first: of equally cheap plans, the one with the
            # lower SoC next (discharge as early, charge as late as it pays). Self-use then
            # covers the first hours of a flat-priced peak (tests/daemon/test_e2e.py, enphase:
            # later-first left 0.61 kWh imported over the 16:00-18:00 peak).
            if i < w_n and (j >= k or w_slope[i] < r_slope[t, j]):
                m_len[off + c] = w_len[i]
                m_slope[c] = w_slope[i]
                m_w[off + c] = True
                i += 1
            else:
                m_len[off + c] = r_len[t, j]
                m_slope[c] = r_slope[t, j]
                m_w[off + c] = False
                j += 1
            c += 1
        a = w_a + r_left[t]
        v = w_v + r_value_left[t]
        m_off[t], m_cnt[t], m_a[t], m_aw[t] = off, c, a, w_a
        total = 0.0
        for q in range(c):
            total += m_len[off + q]
        if a > hi + 1e-9 or a + total < lo - 1e-9:
            return np.nan
        new_a = min(max(a, lo), hi)
        pos = a
        w_n = 0
        for q in range(c):
            seg = m_len[off + q]
            end = pos + seg
            left_part = min(max(new_a - pos, 0.0), seg)
            v += m_slope[q] * left_part
            kept = min(end, hi) - max(pos, new_a)
            if kept > TINY:
                w_len[w_n] = kept
                w_slope[w_n] = m_slope[q]
                w_n += 1
            pos = end
        w_a, w_v = new_a, v
        off += c
    total = 0.0
    for q in range(w_n):
        total += w_len[q]
    s = soc0
    if s < w_a - 1e-9 or s > w_a + total + 1e-9:
        return np.nan
    value = w_v
    pos = w_a
    for q in range(w_n):
        value += w_slope[q] * min(max(s - pos, 0.0), w_len[q])
        pos += w_len[q]
    for t in range(first, n):
        x = s - m_a[t]
        pos = 0.0
        took = 0.0
        o = m_off[t]
        for q in range(m_cnt[t]):
            if pos >= x:
                break
            seg = m_len[o + q]
            if m_w[o + q]:
                took += min(seg, x - pos)
            pos += seg
        s = m_aw[t] + took
        soc[t] = s
    return value
