"""Re-plans in a storm run most urgent first, never more at once than the solver threads."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from flexd.control.solve_queue import HALF_HOUR, LATER, NOW, SolveQueue, urgency


def test_urgency_from_reasons():
    assert urgency({"prices"}) == LATER
    assert urgency({"prices", "half-hour"}) == HALF_HOUR
    assert urgency({"prices", "plug-in"}) == NOW
    assert urgency({"bump-start"}) == NOW


async def test_waiting_solves_start_by_priority_then_arrival():
    pool = ThreadPoolExecutor(1)
    queue = SolveQueue(pool, 1)
    gate = threading.Event()
    order: list[str] = []
    in_flight = 0
    most = 0
    lock = threading.Lock()

    def solve(name):
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        if name == "first":
            gate.wait(5)
        order.append(name)
        with lock:
            in_flight -= 1
        return name

    first = asyncio.create_task(queue.run(LATER, solve, "first"))
    await asyncio.sleep(0.05)  # "first" holds the only slot
    waiting = [asyncio.create_task(queue.run(p, solve, name)) for p, name in
               [(LATER, "prices-a"), (HALF_HOUR, "roll-over"), (NOW, "plug-in"),
                (LATER, "prices-b"), (NOW, "bump")]]  # fmt: skip
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(first, *waiting)
    assert results == ["first", "prices-a", "roll-over", "plug-in", "prices-b", "bump"]
    assert order == ["first", "plug-in", "bump", "roll-over", "prices-a", "prices-b"]
    assert most == 1 and queue.running == 0
    pool.shutdown()


async def test_a_cancelled_waiter_does_not_leak_its_slot():
    pool = ThreadPoolExecutor(1)
    queue = SolveQueue(pool, 1)
    gate = threading.Event()
    first = asyncio.create_task(queue.run(NOW, lambda _: gate.wait(5), None))
    await asyncio.sleep(0.05)
    doomed = asyncio.create_task(queue.run(NOW, lambda x: x, 1))
    await asyncio.sleep(0.01)
    doomed.cancel()
    gate.set()
    await first
    assert await asyncio.wait_for(queue.run(NOW, lambda x: x, 2), 2) == 2
    assert queue.running == 0
    pool.shutdown()
