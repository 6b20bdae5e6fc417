"""The scheduler for EV charging and home batteries (pure: no clock, no I/O).

:func:`solve` and :class:`Planner` pick the fastest exact method for the problem's shape
(optimiser.planner) and fall back to HiGHS; ``solver="highs"`` forces HiGHS, ``"cbc"`` the
PuLP reference.
"""

from optimiser.highs_solver import solve_highs
from optimiser.planner import HighsPlanner, Planner, solve_fast, warm_up
from optimiser.problem import EV, Battery, FirstSlot, Grid, Problem, ProblemError, parse_problem
from optimiser.schedule import Dispatch, EvPlan, Schedule

SOLVERS = ("auto", "highs", "cbc")


def solve(problem: Problem, solver: str = "auto") -> Schedule:
    """Solve one problem: ``auto`` (a fast exact path where the shape has one, else HiGHS),
    ``highs`` (the sparse HiGHS model) or ``cbc`` (the PuLP reference)."""
    if solver == "auto":
        return solve_fast(problem) or solve_highs(problem)
    if solver == "highs":
        return solve_highs(problem)
    if solver == "cbc":
        from optimiser.pulp_reference import solve_pulp

        return solve_pulp(problem)
    raise ProblemError("solver", f"must be one of {', '.join(SOLVERS)}")


__all__ = [
    "EV",
    "SOLVERS",
    "Battery",
    "Dispatch",
    "EvPlan",
    "FirstSlot",
    "Grid",
    "HighsPlanner",
    "Planner",
    "Problem",
    "ProblemError",
    "Schedule",
    "parse_problem",
    "solve",
    "warm_up",
]
