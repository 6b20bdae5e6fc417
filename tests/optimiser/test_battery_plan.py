"""The battery path's compiled plan (optimiser.battery_dp._plan) against the shared accounting:
its Schedule equals optimiser.assemble.assemble's on the same arrays, to the bit."""

from dataclasses import fields
from datetime import UTC, datetime

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from optimiser import Battery, FirstSlot, Grid, Problem
from optimiser.assemble import assemble
from optimiser.battery_dp import _np_sum, exact_conditions, solve_battery
from optimiser.model import UNSERVED_P
from tests.optimiser.invariants import check
from tests.optimiser.test_fast import SETTINGS, random_battery

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_compiled_sum_is_numpys_to_the_bit():
    rng = np.random.default_rng(7)
    for n in [*range(0, 300), 511, 512, 1000, 4099]:  # below, at and past the 8/128 blocks
        a = rng.normal(size=n) * 10 ** rng.uniform(-4, 4, n)
        assert _np_sum(a) == a.sum(), n


@SETTINGS
@given(n=st.integers(1, 60), seed=st.integers(0, 2**32 - 1), pv=st.booleans(),
       carbon=st.booleans(), pinned=st.booleans(), short=st.booleans())  # fmt: skip
def test_battery_schedule_equals_assemble(n, seed, pv, carbon, pinned, short):
    rng = np.random.default_rng(seed)
    imp = rng.uniform(0, 40, n).round(3)
    exp = (imp * rng.uniform(0, 1, n)).round(3)
    pin = FirstSlot(float(rng.uniform(0, 1)), 0.0) if pinned else None
    load = rng.uniform(0, 2, n) * (10 if short else 1)  # short: more load than the grid serves
    p = Problem(
        START, 30, imp, exp, load, rng.uniform(0, 3, n) * pv,
        Grid(float(rng.uniform(1, 20)), float(rng.uniform(0, 6))), random_battery(rng), (),
        carbon_g_per_kwh=rng.uniform(50, 300, n) if carbon else None,
        carbon_weight_p_per_kg=0.1 if carbon else 0.0, first_slot=pin,
    )  # fmt: skip
    s = solve_battery(p)
    if s is None:
        return  # infeasible SoC bounds or a pin off them (test_fast: HiGHS agrees)
    check(p, s)
    ref = assemble(
        p, imp=s.grid_import_kwh.copy(), exp=s.grid_export_kwh.copy(),
        curt=s.pv_curtailed_kwh.copy(), unserved=s.unserved_kwh.copy(),
        bc=s.battery_charge_kwh.copy(), bd=s.battery_discharge_kwh.copy(),
        soc=s.battery_soc_kwh.copy(), solver="battery-dp",
    )  # fmt: skip
    for f in fields(s):
        got, want = getattr(s, f.name), getattr(ref, f.name)
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype and np.array_equal(got, want), f.name
        else:
            assert got == want, f.name


@SETTINGS
@given(n=st.integers(1, 30), seed=st.integers(0, 2**32 - 1),
       breach=st.sampled_from(["none", "negative import", "export above import",
                               "import at unserved", "negative export", "round trip",
                               "negative value"]))  # fmt: skip
def test_battery_plan_declines_exactly_outside_exact_conditions(n, seed, breach):
    # _plan checks exact_conditions' price part itself; without a pin or a final SoC above
    # the start every such problem is feasible (idle), so it declines iff they fail.
    rng = np.random.default_rng(seed)
    imp = rng.uniform(0, 40, n)
    exp = imp * rng.uniform(0, 1, n)
    t = int(rng.integers(0, n))
    eta, value = 0.95, 0.0
    if breach == "negative import":
        imp[t], exp[t] = -1.0, 0.0
    elif breach == "export above import":
        exp[t] = imp[t] + 0.5
    elif breach == "import at unserved":
        imp[t] = UNSERVED_P
    elif breach == "negative export":
        exp[t] = -0.5
    elif breach == "round trip":
        eta = 0.3
    elif breach == "negative value":
        value = -1.0
    b = Battery(9.5, float(rng.uniform(0, 9.5)), charge_efficiency=eta, discharge_efficiency=eta,
                value_p_per_kwh=value)  # fmt: skip
    p = Problem(START, 30, imp, exp, rng.uniform(0, 2, n), rng.uniform(0, 3, n), Grid(), b, ())
    assert exact_conditions(p) == (breach == "none")
    assert (solve_battery(p) is not None) == exact_conditions(p)
