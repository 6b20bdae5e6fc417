"""Fencing: a fleet site's writes carry the epoch of the lease they were made under.

Every claim of a site increments its epoch (:mod:`flexd.fleet.leases`). The site's control task
sets :data:`FENCE` to (site, owner, epoch); every write transaction begun in that task first
reads the site's row ``FOR SHARE`` and refuses to go on (:class:`StaleEpoch`, the transaction
rolls back) unless the owner and epoch are still its own. ``FOR SHARE`` conflicts with the
claim's ``FOR UPDATE``, so a claim waits for a write in flight to commit, and any write that
begins after the claim sees the new epoch: an old owner paused past its lease can never write
over the new owner's half-hours, plans or dispatches.

A context variable rather than a parameter: each asyncio task has its own copy, so the site
loop's own writes and the rater's and dispatch book's writes it makes are all fenced, while
the API's writes (a customer's bump or preferences, stored by any instance) are not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Fence:
    site: str
    owner: str
    epoch: int


FENCE: ContextVar[Fence | None] = ContextVar("flexd_fence", default=None)


class StaleEpoch(Exception):
    """A write made under a lease that another instance has since taken over."""

    def __init__(self, fence: Fence, owner: str | None, epoch: int | None) -> None:
        super().__init__(
            f"site {fence.site}: epoch {fence.epoch} of {fence.owner} is stale "
            f"(now epoch {epoch} of {owner})"
        )
        self.fence = fence
        self.owner = owner
        self.epoch = epoch


class _Reads(Protocol):
    async def fetchone(self, sql: str, args: Any = ()) -> tuple[Any, ...] | None: ...


@contextmanager
def fenced(fence: Fence | None) -> Iterator[None]:
    """Every write transaction begun inside carries ``fence`` (this task and tasks it starts)."""
    token = FENCE.set(fence)
    try:
        yield
    finally:
        FENCE.reset(token)


async def check(tx: _Reads, fence: Fence, dialect: str) -> None:
    lock = " FOR SHARE" if dialect == "postgresql" else ""
    sql = f"SELECT owner, epoch FROM fleet_sites WHERE id = ?{lock}"
    row = await tx.fetchone(sql, (fence.site,))
    owner, epoch = (None, None) if row is None else (row[0], int(row[1]))
    if owner != fence.owner or epoch != fence.epoch:
        raise StaleEpoch(fence, owner, epoch)
