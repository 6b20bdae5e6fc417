"""Solver processes: re-plans solved outside the daemon's process, so a storm's solves use
every core.

A solve in a thread holds the GIL for all but its compiled kernels (problem checks, the search
around them, the Schedule and the Plan), and the event loop that runs pollers, the API and the
database needs the same GIL. In a 1,000-site plug-in storm the solves took about a third of the
samples on the loop's interpreter (py-spy, BENCHMARKS.md); in processes they cost the loop only
the pickling of a snapshot and of a plan (a few kB each).

Each worker keeps one reusable solver (optimiser.Planner) for every site it is given: the solve
needs nothing but the snapshot (flexd.control.planner.solve_input). Workers are spawned, not
forked (the daemon has threads by then), and compile nothing: numba's cache beside the modules
is loaded by optimiser.planner.warm_up. A worker that dies (killed, out of memory) breaks the
pool; the pool is then rebuilt and the solve tried once more.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import structlog

from flexd.control.plan import Plan
from flexd.control.planner import PlanInput, new_solver, solve_input
from optimiser import Planner as SchedulePlanner

log = structlog.get_logger("flexd.control.solve_procs")

_SOLVER: SchedulePlanner | None = None  # the worker's own, made when it starts


def _start_worker() -> None:
    global _SOLVER
    from optimiser.planner import warm_up

    warm_up()
    _SOLVER = new_solver()


def solve_in_worker(inp: PlanInput) -> Plan | None:
    assert _SOLVER is not None  # set by _start_worker
    return solve_input(_SOLVER, inp)


def worker_pids(pool: ProcessPoolExecutor) -> list[int]:
    """The pool's live worker processes (tests kill one)."""
    procs = getattr(pool, "_processes", None) or {}  # None once the pool is shut down
    return [p.pid for p in procs.values() if p.pid is not None]


class SolverProcesses:
    """``processes`` solver processes; :meth:`solve` runs one snapshot on one of them."""

    def __init__(self, processes: int) -> None:
        self.processes = max(1, processes)
        self.rebuilt = 0  # times a broken pool was replaced (metrics, tests)
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
        )  # fmt: skip

    def start(self) -> None:
        """Start every worker now (each loads the compiled kernels, about a second), so the
        first storm does not wait for them."""
        for f in [self.pool.submit(int) for _ in range(self.processes)]:
            f.result()

    async def solve(self, inp: PlanInput) -> Plan | None:
        loop = asyncio.get_running_loop()
        pool = self.pool
        try:
            return await loop.run_in_executor(pool, solve_in_worker, inp)
        except BrokenProcessPool:
            if self.pool is pool:  # the first to see it rebuilds; the others use the new one
                log.error("solver_process_died", processes=self.processes)
                self.pool = self._new_pool()
                self.rebuilt += 1
                pool.shutdown(wait=False, cancel_futures=True)
            return await loop.run_in_executor(self.pool, solve_in_worker, inp)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
