"""Group commit: writes made while one transaction is being written join the next one, and
each call returns once its write is committed (or raises what stopped it), as a transaction of
its own would. :class:`GroupCommit` is the mechanism; :class:`KvGroupCommit` batches the small
key/value saves, flexd.storage.plan_writes the re-plans.

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
from typing import Any, Generic, Protocol, TypeVar

from flexd.storage import fence as fencing
from flexd.storage.driver import Driver

UPSERT = "INSERT INTO kv VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"


class Entry(Protocol):
    """A pending write: the fence it was made under, and the callers waiting for it."""

    fence: fencing.Fence | None
    waiters: list[asyncio.Future[None]]


E = TypeVar("E", bound=Entry)


class GroupCommit(Generic[E]):
    """Subclasses keep the pending entries (:meth:`_next_batch` takes a batch of them) and
    write a batch's live entries in a transaction (:meth:`_store`)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self._writer: asyncio.Task[None] | None = None
        self.transactions = 0  # committed batches (tests, benchmarks)

    def _next_batch(self) -> list[E]:
        raise NotImplementedError

    async def _store(self, tx: Any, live: list[E]) -> None:
        raise NotImplementedError

    async def _committed(self, entry: E) -> None:
        """Wait for a newly pending entry's batch (starting the writer if it is idle)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.waiters.append(done)
        if self._writer is None or self._writer.done():
            # Not under the caller's fence: the batch checks each entry's own.
            with fencing.fenced(None):
                self._writer = asyncio.get_running_loop().create_task(self._write())
        await asyncio.shield(done)

    async def _write(self) -> None:
        while batch := self._next_batch():
            stale: dict[fencing.Fence, fencing.StaleEpoch] = {}
            try:
                async with self.driver.transaction() as tx:
                    for f in {e.fence for e in batch if e.fence is not None}:
                        try:
                            await fencing.check(tx, f, self.driver.dialect)
                        except fencing.StaleEpoch as exc:
                            stale[f] = exc
                    await self._store(tx, [e for e in batch if e.fence not in stale])
                self.transactions += 1
            except BaseException as exc:  # nothing of this batch was written: each caller hears
                told = exc if isinstance(exc, Exception) else RuntimeError(f"stopped: {exc!r}")
                for e in batch:
                    for w in e.waiters:
                        if not w.done():
                            w.set_exception(told)
                if not isinstance(exc, Exception):
                    raise
                continue
            for e in batch:
                for w in e.waiters:
                    if w.done():
                        continue
                    if e.fence is not None and e.fence in stale:
                        w.set_exception(stale[e.fence])
                    else:
                        w.set_result(None)


@dataclass
class _KvEntry:
    key: str
    value: str
    fence: fencing.Fence | None
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class KvGroupCommit(GroupCommit[_KvEntry]):
    def __init__(self, driver: Driver) -> None:
        super().__init__(driver)
        self._pending: dict[str, _KvEntry] = {}

    async def set(self, key: str, value: str) -> None:
        fence = fencing.FENCE.get()
        entry = self._pending.get(key)
        if entry is None or entry.fence != fence:
            # A second value for a key before it is written replaces the first (the first
            # caller returns when the later value commits: the same end state).
            previous = entry.waiters if entry is not None else []
            entry = self._pending[key] = _KvEntry(key, value, fence, previous)
        else:
            entry.value = value
        await self._committed(entry)

    def _next_batch(self) -> list[_KvEntry]:
        batch, self._pending = list(self._pending.values()), {}
        return batch

    async def _store(self, tx: Any, live: list[_KvEntry]) -> None:
        await tx.executemany(UPSERT, [(e.key, e.value) for e in live])
