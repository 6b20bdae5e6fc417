"""Every device command a fleet instance sends, with the epoch it was sent under.

Before a command goes to a device, its row is written in a transaction fenced by the site's
epoch (:mod:`flexd.storage.fence`), and only after the local lease check: an instance whose
lease has run out by its own monotonic clock (paused, cut off from the database) or whose epoch
is stale sends nothing. Devices do not take fencing tokens, so the journal is what makes
"one owner acts at a time" checkable: its (sent_at, done_at) windows per device, stamped by the
database's clock, must never overlap between owners.

A command also gets a deadline: the time left on the instance's lease by its own clock, less a
margin. The site loop abandons the command there (its timeout is cut to it), so every command
an owner sends is over before its lease can expire, and so before any other instance can claim
the site; a command cut short by kill -9 never gets its ``done_at``, but its window still ends at
its ``deadline``. An instance with less than ``MIN_BUDGET_S`` left sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from flexd.storage import Storage
from flexd.storage.fence import FENCE, fenced


class NoLeaseLeft(Exception):
    """Too little of the lease is left by this instance's own clock to send a command: it is
    skipped (the next heartbeat renews the lease, or another instance takes the site over)."""


MIN_BUDGET_S = 1.0  # less lease than this left: send nothing (the next renewal comes first)
MARGIN_S = 0.5  # the insert's own time, and the two clocks' rates


class CommandJournal:
    def __init__(self, storage: Storage, lease_left: Callable[[str], float]) -> None:
        self.storage = storage
        self.lease_left = lease_left  # site -> seconds left on its lease, by this instance's clock

    async def sent(self, device_id: str, command: str) -> tuple[int, float]:
        """Record a command about to be sent: (entry, seconds it may take at most).
        StaleEpoch when this instance may not act on the site."""
        fence = FENCE.get()
        if fence is None:
            raise RuntimeError("a fleet command outside its site's fence")
        budget = self.lease_left(fence.site) - MARGIN_S
        if budget < MIN_BUDGET_S:
            raise NoLeaseLeft(f"site {fence.site}: {budget + MARGIN_S:.1f} s of lease left")
        async with self.storage.driver.transaction() as tx:  # fenced: checks the epoch first
            row = await tx.fetchone(
                "INSERT INTO fleet_commands (site, epoch, owner, device_id, command, sent_at, "
                "deadline) VALUES (?, ?, ?, ?, ?, clock_timestamp(), "
                "clock_timestamp() + make_interval(secs => ?)) RETURNING id",
                (fence.site, fence.epoch, fence.owner, device_id, command, budget),
            )
        assert row is not None
        entry = int(row[0])
        # The write took time of its own: the command gets what is left now (the deadline
        # stored above, from before the write, is still a bound on it).
        left = min(budget, self.lease_left(fence.site) - MARGIN_S)
        if left < MIN_BUDGET_S:
            await self.done(entry, "skipped")
            raise NoLeaseLeft(f"site {fence.site}: the lease ran short while journalling")
        return entry, left

    def cancelled(self, entry: int) -> None:
        """The command was cancelled (its site given back mid-command): close its window
        from a task of its own, as the cancelled one cannot wait for the write."""
        task = asyncio.get_running_loop().create_task(self.done(entry, "cancelled"))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    async def done(self, entry: int, outcome: str) -> None:
        """The command's answer came (or failed): close its window, fenced or not (the window
        is a fact about what was sent, whoever owns the site now)."""
        with fenced(None), contextlib.suppress(Exception):  # at worst the deadline closes it
            async with self.storage.driver.transaction() as tx:
                await tx.execute(
                    "UPDATE fleet_commands SET done_at = clock_timestamp(), outcome = ? "
                    "WHERE id = ?",
                    (outcome, entry),
                )


    async def close_open(self, site: str, epoch: int) -> None:
        """A run of the site has stopped: every command it left open is over now. Called
        before the site is given back, so no window stays open past the hand-over."""
        with fenced(None):
            async with self.storage.driver.transaction() as tx:
                await tx.execute(
                    "UPDATE fleet_commands SET done_at = clock_timestamp(), outcome = 'cancelled' "
                    "WHERE site = ? AND epoch = ? AND done_at IS NULL",
                    (site, epoch),
                )


_pending: set[asyncio.Task[None]] = set()
