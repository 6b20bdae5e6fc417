"""Re-plans in a storm, most urgent first.

A thousand sites re-planning at once (cars plugged in at 18:00, the day's prices published)
queue for the solver threads. A plain thread pool serves them in arrival order, so a car that
just plugged in waits behind price re-plans whose first slots will not change. Here each solve
waits for a free solver slot in priority order (then arrival order), with no more solves in
flight than the pool has threads, so the pool's own queue never reorders them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from flexd.control.plan import Plan
    from flexd.control.planner import PlanInput, Planner
    from flexd.control.solve_procs import SolverProcesses

T = TypeVar("T")
A = TypeVar("A")

# What a re-plan is for: what the devices do now changes first, then the half-hour's roll-over,
# then plans that only reprice later slots.
NOW = 0
HALF_HOUR = 1
LATER = 2
_NOW_REASONS = frozenset({"start", "plug-in", "unplug", "bump-start", "bump-end",
                          "preferences", "soc-off-plan"})  # fmt: skip


def urgency(reasons: Iterable[str]) -> int:
    """The priority of a re-plan from its reasons (lower runs first)."""
    got = set(reasons)
    if got & _NOW_REASONS:
        return NOW
    if "half-hour" in got:
        return HALF_HOUR
    return LATER


class SolveQueue:
    """At most ``slots`` solves in flight on ``executor``; waiters start by priority."""

    def __init__(
        self, executor: Executor | None, slots: int, processes: SolverProcesses | None = None
    ) -> None:
        self.executor = executor
        self.processes = processes
        self.slots = max(1, slots)
        self.running = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.started: list[int] = []  # the priority of each solve as it started (tests, metrics)

    async def run(self, priority: int, fn: Callable[[A], T], arg: A) -> T:
        await self._acquire(priority)
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, fn, arg)
        finally:
            self._release()

    async def solve(self, priority: int, planner: Planner, inp: PlanInput) -> Plan | None:
        """A re-plan: in the solver processes where the daemon has them, else on the executor
        with the site's own planner."""
        if self.processes is None:
            return await self.run(priority, planner.solve, inp)
        await self._acquire(priority)
        try:
            return await self.processes.solve(inp)
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if self.running < self.slots and not self._waiting:
            self.running += 1
            self.started.append(priority)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # the slot was handed over as we were cancelled: pass it on
            raise
        self.started.append(priority)

    def _release(self) -> None:
        while self._waiting:
            _p, _s, fut = heapq.heappop(self._waiting)
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the most urgent waiter
                return
        self.running -= 1
