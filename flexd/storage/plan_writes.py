"""Group commit for re-plans: plans stored while one batch is being written join the next
batch, and each call returns once its plan and dispatches are committed (or raises what
stopped them), as a transaction of its own would.

Why: on SQLite writes are serialised, and a transaction holds the writer lock across one
event-loop turn per statement. In a 1,000-site plug-in storm a turn took 8 ms on average (a
thousand loops ready at once), a re-plan's transaction held the lock 6 ms (median; p95 20 ms)
and waited 4.1 s (median) for it (bench/daemon.py, BENCHMARKS.md). Here a batch of plans costs
the statements of one: every plan's rows in one executemany, every charger's dispatches read
in one SELECT. On PostgreSQL it is one commit per batch instead of per re-plan.

Per plan (Storage.store_plan): the plan row; per charger, planned SMART dispatches that have not
started are cancelled; one running now is kept (a dispatch is a fact once it has started) and
its end moved to the plan's, or to now where the plan stops charging now; the plan's later
intervals are added. Two plans for one charger never share a batch (the later one waits for the
next), and each batch locks its chargers (PostgreSQL advisory locks: another instance's plan for
the same charger waits). Fleet writes are fenced each by its own epoch: a stale one gets
StaleEpoch and the rest of the batch is written.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from flexd.storage import fence as fencing
from flexd.storage.driver import Driver
from flexd.storage.group_commit import GroupCommit
from flexd.storage.rows import DISPATCH_COLS, DISPATCH_INSERT, dispatch_from_db, ts

MAX_BATCH = 200  # plans per transaction (SQL parameters stay well under SQLite's limit)


@dataclass
class PlanWrite:
    site: str
    meter: str
    at: datetime
    reason: str
    objective_p: Decimal
    payload: dict[str, Any]
    smart: Mapping[str, Sequence[tuple[datetime, datetime]]]
    fence: fencing.Fence | None
    waiters: list[asyncio.Future[None]] = field(default_factory=list, repr=False)


class PlanGroupCommit(GroupCommit[PlanWrite]):
    def __init__(self, driver: Driver) -> None:
        super().__init__(driver)
        self._pending: list[PlanWrite] = []

    async def store(
        self, site: str, meter: str, at: datetime, reason: str, objective_p: Decimal,
        payload: dict[str, Any], smart: Mapping[str, Sequence[tuple[datetime, datetime]]],
    ) -> None:  # fmt: skip
        # Made into text now, in the caller: a payload that cannot be stored fails its own call.
        json.dumps(payload)
        w = PlanWrite(site, meter, at, reason, objective_p, payload, smart, fencing.FENCE.get())
        self._pending.append(w)
        await self._committed(w)

    def _next_batch(self) -> list[PlanWrite]:
        batch: list[PlanWrite] = []
        later: list[PlanWrite] = []
        devices: set[str] = set()
        sites: set[str] = set()
        for w in self._pending:
            if len(batch) >= MAX_BATCH or w.site in sites or devices & set(w.smart):
                later.append(w)  # one plan per site and charger per batch, in arrival order
                continue
            batch.append(w)
            sites.add(w.site)
            devices |= set(w.smart)
        self._pending = later
        return batch

    async def _store(self, tx: Any, live: list[PlanWrite]) -> None:
        await _store(tx, live)


async def _store(tx: Any, batch: list[PlanWrite]) -> None:
    if not batch:
        return
    devices = sorted({d for w in batch for d in w.smart})
    await tx.lock_many([f"smart:{d}" for d in devices])
    await tx.executemany(
        "INSERT INTO plans (site, created_at, reason, objective_p, payload) VALUES (?,?,?,?,?)",
        [(w.site, ts(w.at), w.reason, str(w.objective_p), json.dumps(w.payload)) for w in batch],
    )
    if not devices:
        return
    await tx.executemany(
        "UPDATE dispatches SET status = 'cancelled', updated_at = ? WHERE device_id = ? AND "
        "kind = 'smart' AND status = 'planned' AND start > ?",
        [(ts(w.at), d, ts(w.at)) for w in batch for d in w.smart],
    )
    first = min(w.at for w in batch)
    last = max(w.at for w in batch)
    marks = ",".join("?" * len(devices))
    rows = await tx.fetchall(
        f"SELECT {DISPATCH_COLS} FROM dispatches WHERE device_id IN ({marks}) AND "
        "kind = 'smart' AND status = 'planned' AND start <= ? AND \"end\" > ? ORDER BY start, id",
        (*devices, ts(last), ts(first)),
    )
    found = [dispatch_from_db(r) for r in rows]
    ends: list[tuple[str, str, str]] = []
    added: list[tuple[Any, ...]] = []
    for w in batch:
        now = ts(w.at)
        for device_id, intervals in w.smart.items():
            running = [d for d in found if d.device_id == device_id and d.start <= w.at < d.end]
            for start, end in intervals:
                if end <= w.at:
                    continue
                if start <= w.at and running:
                    ends.append((ts(end), now, running.pop(0).id))
                    continue
                added.append((str(uuid.uuid4()), w.site, w.meter, device_id, ts(max(start, w.at)),
                              ts(end), "smart", "planned", "home", "0", now, now))  # fmt: skip
            # The plan no longer charges now: a dispatch running now ends here.
            ends.extend((now, now, d.id) for d in running)
    await tx.executemany('UPDATE dispatches SET "end" = ?, updated_at = ? WHERE id = ?', ends)
    await tx.executemany(DISPATCH_INSERT, added)
