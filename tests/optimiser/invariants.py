"""Invariants every schedule must satisfy, checked on every solution the tests make."""

import numpy as np

from optimiser import Problem, Schedule

TOL = 1e-6


def check(p: Problem, s: Schedule) -> None:
    h = p.slot_hours
    n = p.n
    imp, exp = s.grid_import_kwh, s.grid_export_kwh
    assert imp.shape == exp.shape == (n,)
    assert np.all(imp >= -TOL) and np.all(imp <= p.grid.import_kw * h + TOL)
    assert np.all(exp >= -TOL) and np.all(exp <= p.grid.export_kw * h + TOL)
    assert not np.any((imp > TOL) & (exp > TOL)), "import and export in one slot"
    ev_total = sum((e.charge_kwh for e in s.evs), np.zeros(n))
    balance = (p.pv_kwh - s.pv_curtailed_kwh + imp + s.battery_discharge_kwh + s.unserved_kwh
               - p.load_kwh - ev_total - s.battery_charge_kwh - exp)  # fmt: skip
    assert np.allclose(balance, 0, atol=1e-5), "energy balance"
    b = p.battery
    if b is not None:
        bc, bd, soc = s.battery_charge_kwh, s.battery_discharge_kwh, s.battery_soc_kwh
        assert np.all(bc >= -TOL) and np.all(bc <= b.charge_kw * h + TOL)
        assert np.all(bd >= -TOL) and np.all(bd <= b.discharge_kw * h + TOL)
        assert not np.any((bc > TOL) & (bd > TOL)), "charge and discharge in one slot"
        assert np.all(soc >= b.min_soc_kwh - 1e-5) and np.all(soc <= b.max_soc + 1e-5)
        prev = np.concatenate([[b.soc_kwh], soc[:-1]])
        assert np.allclose(soc, prev + b.charge_efficiency * bc - bd / b.discharge_efficiency, atol=1e-5)
        assert soc[-1] >= b.final_min - 1e-5
    for spec, e in zip(p.evs, s.evs, strict=True):
        c = e.charge_kwh
        plugged = np.asarray(spec.plugged_in)
        assert np.all(c >= -TOL) and np.all(c <= spec.max_charge_kw * h * plugged + TOL)
        prev = np.concatenate([[spec.soc_kwh], e.soc_kwh[:-1]])
        assert np.allclose(e.soc_kwh, prev + spec.efficiency * c, atol=1e-5)
        assert np.all(e.soc_kwh <= spec.capacity_kwh + 1e-5)
        k = p.ready_index(spec)
        reached = e.soc_kwh[k - 1] if k >= 1 else spec.soc_kwh
        target = min(spec.target_soc_kwh, spec.capacity_kwh)
        assert reached + e.shortfall_kwh >= target - 1e-5
        # The target is surely reachable when the car alone, on what the grid connection and
        # PV leave after the house (ignoring the battery), gets there before ready-by, and no
        # pinned first slot holds the car back (a pinned EV energy, or a pinned battery charge
        # taking the connection: HiGHS then misses the same target).
        room = np.clip(p.grid.import_kw * h + p.pv_kwh - p.load_kwh, 0, spec.max_charge_kw * h)
        reachable = spec.soc_kwh + spec.efficiency * float((room * plugged)[:k].sum())
        alone = len(p.evs) == 1
        free = p.first_slot is None
        if alone and free and spec.max_charge_slots_per_day is None and reachable >= target + 1e-3:
            assert e.shortfall_kwh < 1e-5, "reachable target missed"
        assert sum(d.kwh for d in e.dispatches) == np.float64(c[c > 1e-6].sum()) or abs(
            sum(d.kwh for d in e.dispatches) - c[c > 1e-6].sum()) < 1e-6  # fmt: skip
