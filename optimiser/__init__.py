"""The LP scheduler for EV charging and home batteries (pure: no clock, no I/O)."""

from optimiser.highs_solver import HighsPlanner, solve_highs
from optimiser.problem import EV, Battery, FirstSlot, Grid, Problem, ProblemError, parse_problem
from optimiser.schedule import Dispatch, EvPlan, Schedule

SOLVERS = ("highs", "cbc")


def solve(problem: Problem, solver: str = "highs") -> Schedule:
    """Solve one problem: ``highs`` (sparse HiGHS model) or ``cbc`` (the PuLP reference)."""
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
    "Problem",
    "ProblemError",
    "Schedule",
    "parse_problem",
    "solve",
]
