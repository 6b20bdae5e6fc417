"""The exact plan for one EV and no battery: sort and fill.

With export worth no more than import, the EV's only use for energy is its target, so the
plan takes the cheapest energy before ready-by until the target is met (or until energy costs
more than the shortfall penalty). Each slot's energy is priced by the grid-cost function G
(optimiser.battery_dp.grid_costs) plus the model's tie-break, which makes the earlier of two
equal-price slots cheaper, as HiGHS's plan has it.

- No slot cap, no minimum power: a fractional fill over every slot's price segments (a convex
  separable problem with one sum constraint: greedy is exact).
- A per-day slot cap or a minimum power: declined unless every usable slot has one price over
  the charger's whole range (no PV surplus, import limit not reached). Then all slots are the
  same size and the greedy in price order is exact under the per-period caps (a partition
  matroid); a last slot below the minimum power takes what it lacks from the dearest other
  slot, or tops up past the target, or is dropped, whichever costs least.
"""

from __future__ import annotations

import numpy as np

from optimiser.assemble import assemble
from optimiser.battery_dp import effective_import_price, grid_costs, split_grid
from optimiser.model import SHORTFALL_P, TIE_BREAK_P, UNSERVED_P, midday_periods
from optimiser.problem import Problem
from optimiser.schedule import Schedule

TINY = 1e-12


def solve_ev(p: Problem) -> Schedule | None:
    """The exact plan for a single-EV, battery-free problem, or None where greedy is not exact."""
    if p.battery is not None or len(p.evs) != 1:
        return None
    ev = p.evs[0]
    if p.first_slot is not None and any(i == ev.id for i, _ in p.first_slot.ev_charge_kwh):
        return None
    n, h = p.n, p.slot_hours
    imp_cost = effective_import_price(p)
    exp_p = p.export_price_p
    if np.any(exp_p < 0) or np.any(imp_cost < exp_p) or np.any(imp_cost >= UNSERVED_P):
        return None
    net = p.load_kwh - p.pv_kwh
    export_kwh = np.full(n, p.grid.export_kw * h)
    plugged = np.asarray(ev.plugged_in, dtype=bool)
    # PV beyond the export limit would be curtailed: charging then earns CURTAIL_P, so the LP
    # may charge past the target. Declined.
    if np.any(plugged & (net + export_kwh < -TINY)):
        return None
    brk, slopes, _, _ = grid_costs(p, export_kwh)
    k = p.ready_index(ev)
    target = min(ev.target_soc_kwh, ev.capacity_kwh)
    need = (target - ev.soc_kwh) / ev.efficiency if k >= 1 and target > ev.soc_kwh else 0.0
    size = ev.max_charge_kw * h
    usable = np.flatnonzero(plugged[:k]) if k >= 1 else np.zeros(0, dtype=np.int64)
    limit = SHORTFALL_P * ev.efficiency  # pence per AC kWh above which shortfall is cheaper
    tie = TIE_BREAK_P * (np.arange(n) + 1)
    charge = np.zeros(n)
    if ev.max_charge_slots_per_day is None and ev.min_charge_kw <= 0:
        left = need
        # Every usable slot's price segments over [net, net + size], cheapest first.
        lo = np.maximum(brk[usable, :-1], net[usable, None])
        hi = np.minimum(brk[usable, 1:], (net[usable] + size)[:, None])
        lens = np.clip(hi - lo, 0.0, None).ravel()
        price = (slopes[usable] + tie[usable, None]).ravel()
        slot = np.repeat(usable, 4)
        for j in np.lexsort((slot, price)):
            if left <= TINY or price[j] >= limit:
                break
            if lens[j] <= TINY:
                continue
            take = min(lens[j], left)
            charge[slot[j]] += take
            left -= take
    else:
        plan = _capped(p, usable, net, brk, imp_cost + tie, need, size, limit)
        if plan is None:
            return None
        charge = plan
    soc = ev.soc_kwh + ev.efficiency * np.cumsum(charge)
    if soc[-1] > ev.capacity_kwh + 1e-9:
        return None
    reached = soc[k - 1] if k >= 1 else ev.soc_kwh
    short = max(0.0, target - reached) if k >= 1 and target > ev.soc_kwh else 0.0
    imp, exp, curt, unserved = split_grid(brk, p.pv_kwh, export_kwh, net + charge)
    zero = np.zeros(n)
    return assemble(
        p, imp=imp, exp=exp, curt=curt, unserved=unserved, bc=zero, bd=zero.copy(),
        soc=zero.copy(), ev_charge=[charge], ev_soc=[soc], shortfall=[short], solver="ev-greedy",
    )  # fmt: skip


def _capped(
    p: Problem, usable: np.ndarray, net: np.ndarray, brk: np.ndarray, price: np.ndarray,
    need: float, size: float, limit: float,
) -> np.ndarray | None:  # fmt: skip
    ev = p.evs[0]
    # One price per slot over the charger's range: import segment only (B[2] = 0, B[3] = I).
    if np.any(net[usable] < 0) or np.any(net[usable] + size > brk[usable, 3] + TINY):
        return None
    cap = ev.max_charge_slots_per_day
    periods = midday_periods(p)
    used: dict[int, int] = {}
    charge = np.zeros(p.n)
    chosen: list[int] = []
    left = need
    for t in sorted(usable.tolist(), key=lambda t: (price[t], t)):
        if left <= TINY or price[t] >= limit:
            break
        per = int(periods[t])
        if cap is not None and used.get(per, 0) >= cap:
            continue
        used[per] = used.get(per, 0) + 1
        charge[t] = min(size, left)
        left -= charge[t]
        chosen.append(t)
    m = ev.min_charge_kw * p.slot_hours
    if not chosen or charge[chosen[-1]] >= m - TINY:
        return charge
    last = chosen[-1]
    lack = m - charge[last]
    options: list[tuple[float, str]] = [(limit * charge[last], "drop")]
    donors = [t for t in chosen[:-1] if charge[t] - lack >= m - TINY]
    if donors:
        donor = max(donors, key=lambda t: (price[t], t))
        options.append((lack * (price[last] - price[donor]), "donate"))
    if ev.soc_kwh + ev.efficiency * (charge.sum() + lack) <= ev.capacity_kwh + TINY:
        options.append((lack * price[last], "top-up"))
    costs = sorted(c for c, _ in options)
    if len(costs) > 1 and costs[1] - costs[0] < 1e-9:
        return None  # a tie between different plans: let HiGHS pick, as the tests compare plans
    best = min(options)[1]
    if best == "drop":
        charge[last] = 0.0
    elif best == "donate":
        charge[donor] -= lack
        charge[last] = m
    else:
        charge[last] = m
    return charge
