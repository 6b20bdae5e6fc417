"""Every device command a fleet instance sends, with the epoch it was sent under.

Before a command goes to a device, its row is written in a transaction fenced by the site's
epoch (:mod:`flexd.storage.fence`), and only after the local lease check: an instance whose
lease has run out by its own monotonic clock (paused, cut off from the database) or whose epoch
is stale sends nothing. Devices do not take fencing tokens, so the journal is what makes
"one owner acts at a time" checkable: its (sent_at, done_at) windows per device, stamped by the
database's clock, must never overlap between owners.
"""

from __future__ import annotations

from collections.abc import Callable

from flexd.storage import Storage
from flexd.storage.fence import FENCE, StaleEpoch, fenced


class CommandJournal:
    def __init__(self, storage: Storage, may_act: Callable[[str], bool]) -> None:
        self.storage = storage
        self.may_act = may_act  # site -> is this instance's lease still good by its own clock

    async def sent(self, device_id: str, command: str) -> int:
        """Record a command about to be sent; StaleEpoch when this instance may not act."""
        fence = FENCE.get()
        if fence is None:
            raise RuntimeError("a fleet command outside its site's fence")
        if not self.may_act(fence.site):
            raise StaleEpoch(fence, None, None)
        async with self.storage.driver.transaction() as tx:  # fenced: checks the epoch first
            row = await tx.fetchone(
                "INSERT INTO fleet_commands (site, epoch, owner, device_id, command, sent_at) "
                "VALUES (?, ?, ?, ?, ?, clock_timestamp()) RETURNING id",
                (fence.site, fence.epoch, fence.owner, device_id, command),
            )
        assert row is not None
        return int(row[0])

    async def done(self, entry: int, outcome: str) -> None:
        """The command's answer came (or failed): close its window, fenced or not (the window
        is a fact about what was sent, whoever owns the site now)."""
        with fenced(None):
            async with self.storage.driver.transaction() as tx:
                await tx.execute(
                    "UPDATE fleet_commands SET done_at = clock_timestamp(), outcome = ? "
                    "WHERE id = ?",
                    (outcome, entry),
                )
