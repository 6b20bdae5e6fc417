"""Group commit for small key/value writes: calls made while one transaction is being written
join the next one, and each call returns once its value is committed (or raises what stopped
it), as a transaction of its own would.

Every site loop saves its open half-hour's meter state each cycle (``kv``). In a 1,000-site
plug-in storm those saves were 4,000 of 7,000 write transactions, and on SQLite, whose writes
are serialised, a re-plan waited 3.8 s (median) for the writer lock behind them: each
transaction holds the lock across several event-loop turns, and a turn is slow when a thousand
loops are ready (bench/daemon.py, BENCHMARKS.md). On PostgreSQL they were a third of a fleet's
commits. Batched, a storm's saves take a few transactions.

Fleet writes stay fenced per caller: each caller's fence (flexd.storage.fence) is checked in
the shared transaction, and a caller whose epoch is stale gets StaleEpoch while the others'
values are written.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from flexd.storage import fence as fencing
from flexd.storage.driver import Driver

UPSERT = "INSERT INTO kv VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"


@dataclass
class _Entry:
    value: str
    fence: fencing.Fence | None
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class KvGroupCommit:
    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self._pending: dict[str, _Entry] = {}
        self._writer: asyncio.Task[None] | None = None
        self.transactions = 0  # committed batches (tests, benchmarks)

    async def set(self, key: str, value: str) -> None:
        fence = fencing.FENCE.get()
        entry = self._pending.get(key)
        if entry is None or entry.fence != fence:
            # A second value for a key before it is written replaces the first (the first
            # caller returns when the later value commits: the same end state).
            previous = entry.waiters if entry is not None else []
            entry = self._pending[key] = _Entry(value, fence, previous)
        else:
            entry.value = value
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.waiters.append(done)
        if self._writer is None or self._writer.done():
            # Not under the caller's fence: the batch checks each entry's own.
            with fencing.fenced(None):
                self._writer = asyncio.get_running_loop().create_task(self._write())
        await asyncio.shield(done)

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            stale: dict[fencing.Fence, fencing.StaleEpoch] = {}
            try:
                async with self.driver.transaction() as tx:
                    for f in {e.fence for e in batch.values() if e.fence is not None}:
                        try:
                            await fencing.check(tx, f, self.driver.dialect)
                        except fencing.StaleEpoch as exc:
                            stale[f] = exc
                    rows = [(k, e.value) for k, e in batch.items() if e.fence not in stale]
                    await tx.executemany(UPSERT, rows)
                self.transactions += 1
            except BaseException as exc:  # nothing of this batch was written: each caller hears
                for e in batch.values():
                    for w in e.waiters:
                        if not w.done():
                            w.set_exception(exc if isinstance(exc, Exception) else
                                            RuntimeError(f"kv write stopped: {exc!r}"))  # fmt: skip
                if not isinstance(exc, Exception):
                    raise
                continue
            for e in batch.values():
                for w in e.waiters:
                    if w.done():
                        continue
                    if e.fence in stale:
                        w.set_exception(stale[e.fence])
                    else:
                        w.set_result(None)
