"""The planner: the fastest exact method for the problem's shape, HiGHS for everything else.

- battery only (no EV): the exact convex DP (:mod:`optimiser.battery_dp`);
- one EV, no battery: sort-and-fill (:mod:`optimiser.ev_greedy`);
- a battery and one EV: a Lagrangian price on the EV's target over the exact battery DP
  (:mod:`optimiser.joint_dp`);
- a battery and one EV where export pays more than import in some slots (IO Go): the best of
  several import-or-export choices, each solved exactly (:mod:`optimiser.export_modes`; not
  proven optimal, measured against the MILP, and says so in the schedule's notes);
- anything else (several EVs, negative prices, a slot cap the fast plan would break, ...):
  HiGHS, LP first and MIP where needed, on a live model.

Each fast path declines (returns None) a problem outside the conditions under which it
applies, and HiGHS solves it. :class:`Planner` is reusable for any number of solves.
"""

from __future__ import annotations

from collections import Counter

from optimiser.battery_dp import solve_battery
from optimiser.ev_greedy import solve_ev
from optimiser.export_modes import solve_export_modes
from optimiser.highs_solver import TIME_LIMIT_S, WarmHighs
from optimiser.joint_dp import solve_joint
from optimiser.problem import Problem
from optimiser.schedule import Schedule


def warm_up() -> None:
    """Compile the fast paths' kernels now (or load them from numba's cache): the first compile
    takes 10-20 s. A daemon on simulated time calls this before its clock starts; otherwise the
    first plan would stall while hours of simulated time pass (a demo night without a plan)."""
    from optimiser.problem import parse_problem

    doc: dict[str, object] = {
        "start": "2026-01-15T00:00:00Z", "import_price_p": [20.0, 7.0, 7.0, 30.0],
        "export_price_p": [5.0, 5.0, 5.0, 5.0], "load_kwh": [0.5, 0.5, 0.5, 0.5],
        "battery": {"capacity_kwh": 5.0, "soc_kwh": 2.0},
    }  # fmt: skip
    solve_fast(parse_problem(doc))
    ev = {"id": "ev", "capacity_kwh": 40.0, "soc_kwh": 10.0, "target_soc_kwh": 12.0,
          "ready_by": "2026-01-15T02:00:00Z", "max_charge_kw": 7.0}  # fmt: skip
    solve_fast(parse_problem({**doc, "evs": [ev]}))
    solve_fast(parse_problem({**doc, "evs": [ev], "export_price_p": [5.0, 9.0, 9.0, 5.0]}))


def solve_fast(p: Problem) -> Schedule | None:
    """The fast path for this problem's shape, or None where none applies."""
    if p.battery is not None and not p.evs:
        return solve_battery(p)
    if p.battery is None and len(p.evs) == 1:
        return solve_ev(p)
    if p.battery is not None and len(p.evs) == 1:
        return solve_joint(p) or solve_export_modes(p)
    return None


class Planner:
    """Reusable: ``Planner().solve(problem) -> Schedule``, any number of times, any shapes.

    ``mip_abs_gap_p``: where HiGHS needs binaries, stop once the plan is proven within this
    many pence of the best (0: prove it optimal). ``time_limit_s`` bounds each HiGHS solve
    (not the planner's lifetime). ``fast=False`` sends every problem to HiGHS.
    """

    def __init__(
        self, mip_abs_gap_p: float = 0.0, time_limit_s: float = TIME_LIMIT_S, fast: bool = True
    ) -> None:
        self.fast = fast
        self.highs = WarmHighs(mip_abs_gap_p, time_limit_s)
        self.paths: Counter[str] = Counter()  # solves per path, for metrics and tests

    def solve(self, p: Problem) -> Schedule:
        if self.fast:
            s = solve_fast(p)
            if s is not None:
                self.paths[s.solver] += 1
                return s
        s = self.highs.solve(p)
        self.paths["highs-mip" if s.mip else "highs"] += 1
        return s


HighsPlanner = Planner  # the name before issue 15
