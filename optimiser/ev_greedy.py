"""placeholder"""
from optimiser.problem import Problem
from optimiser.schedule import Schedule


def solve_ev(p: Problem) -> Schedule | None:
    return None
