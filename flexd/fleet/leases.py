"""Leases on sites, kept in PostgreSQL with the database's own clock.

A site's lease is its owner's heartbeat: a site is free when it has no owner, or its owner has
stopped, or the owner's last heartbeat is older than the owner's ``lease_seconds``. So a renewal
writes one row per instance however many sites it holds (per-site lease rows cost one row
update per site every few seconds, which is what would break first at 500,000 sites).

- A claim takes free sites with ``FOR UPDATE OF fleet_sites SKIP LOCKED`` (two instances claiming
  at once take different sites, and neither waits for the other) and increments each one's epoch
  in the same transaction.
- A renewal stamps the heartbeat and reads back the sites the instance still owns: a site missing
  from the answer was taken over (its lease expired while the instance was paused or cut off).
- A release clears the owner but keeps the epoch, so the next claim is higher.

Instants are ``now()`` on the server: instances' clocks never meet, and the daemon's own clock may
be simulated.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flexd.storage import Storage
from flexd.storage.driver import Tx


@dataclass(frozen=True, slots=True)
class Claim:
    site: str
    epoch: int
    doc: dict[str, Any]  # the site's [[sites]] table as imported
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class InstanceRow:
    id: str
    started: datetime
    last_heartbeat: datetime
    sites_owned: int
    stopped: datetime | None


@dataclass(frozen=True, slots=True)
class SiteLease:
    id: str
    owner: str | None
    epoch: int
    lease_until: datetime | None


class Leases:
    def __init__(self, storage: Storage, instance: str, lease_seconds: float) -> None:
        if storage.dialect != "postgresql":
            raise ValueError("a fleet needs PostgreSQL (daemon.database = postgresql://...)")
        self.storage = storage
        self.instance = instance
        self.lease_s = float(lease_seconds)

    async def register(self) -> None:
        """Join the fleet. A row left by an earlier process with this id (a restart in place:
        same host, same pid, or a fixed ``instance_id``) still names the sites it held: once
        its heartbeat has lapsed they are freed, as this process holds none of them. A row whose
        heartbeat keeps moving belongs to a running duplicate: refused (RuntimeError)."""
        waited = 0.0
        while True:
            rows = await self.storage.query(
                "SELECT extract(epoch from now() - heartbeat_at), lease_seconds, stopped_at "
                "FROM fleet_instances WHERE id = ?",
                (self.instance,),
            )
            if not rows or rows[0][2] is not None or float(rows[0][0]) > float(rows[0][1]):
                break
            if waited > float(rows[0][1]) + 2:
                raise RuntimeError(f"fleet instance id {self.instance!r} is in use by a running "
                                   "instance")  # fmt: skip
            await asyncio.sleep(1.0)
            waited += 1.0
        async with self.storage.driver.transaction() as tx:
            await tx.execute(
                "UPDATE fleet_sites SET owner = NULL WHERE owner = ?", (self.instance,)
            )
            await tx.execute(
                "INSERT INTO fleet_instances (id, started_at, heartbeat_at, lease_seconds) "
                "VALUES (?, now(), now(), ?) ON CONFLICT (id) DO UPDATE SET started_at = now(), "
                "heartbeat_at = now(), lease_seconds = excluded.lease_seconds, sites_owned = 0, "
                "stopped_at = NULL",
                (self.instance, self.lease_s),
            )

    async def renew(self) -> dict[str, int] | None:
        """Beat; returns site -> epoch of the sites this instance still owns, or None when its
        lease had already lapsed (then another instance may hold any of them: the caller stops
        them all). The heartbeat is written before the sites are read, and only if it has not
        lapsed: a claim locks a lapsed instance's row, so a renewal racing it either lands
        first (and the claim skips this instance) or finds the lease lapsed; never both."""
        async with self.storage.driver.transaction() as tx:
            if not await self._beat(tx):
                return None
            rows = await tx.fetchall(
                "SELECT id, epoch FROM fleet_sites WHERE owner = ?", (self.instance,)
            )
            await tx.execute(
                "UPDATE fleet_instances SET sites_owned = ? WHERE id = ?",
                (len(rows), self.instance),
            )
        return {str(r[0]): int(r[1]) for r in rows}

    async def _beat(self, tx: Tx) -> bool:
        """Stamp the heartbeat, only if this instance's lease has not lapsed (the database's
        clock at the statement, not the transaction's start)."""
        row = await tx.fetchone(
            "UPDATE fleet_instances SET heartbeat_at = clock_timestamp() WHERE id = ? AND "
            "stopped_at IS NULL AND heartbeat_at > clock_timestamp() - lease_seconds * "
            "interval '1 second' RETURNING 1",
            (self.instance,),
        )
        return row is not None

    async def rejoin(self) -> None:
        """After a lapsed lease (a pause, a lost database): beat afresh, owning nothing."""
        async with self.storage.driver.transaction() as tx:
            await tx.execute(
                "UPDATE fleet_sites SET owner = NULL WHERE owner = ?", (self.instance,)
            )
            await tx.execute(
                "UPDATE fleet_instances SET heartbeat_at = clock_timestamp(), sites_owned = 0 "
                "WHERE id = ?",
                (self.instance,),
            )

    async def claim(self, limit: int, skip: Sequence[str] = ()) -> list[Claim]:
        """Take up to ``limit`` free sites (not those in ``skip``): unowned ones first, then
        those of instances gone quiet. Nothing when this instance's own lease has lapsed (its
        claims would outlive what the database gives it). The claim beats the heartbeat too,
        so a site's lease starts no earlier than its claim."""
        if limit <= 0:
            return []
        async with self.storage.driver.transaction() as tx:
            if not await self._beat(tx):
                return []
            # Locked: a renewal in flight lands first (and its instance is not gone) or waits
            # and then finds its lease lapsed (flexd.fleet.leases.renew).
            gone = [str(r[0]) for r in await tx.fetchall(
                "SELECT id FROM fleet_instances WHERE id <> ? AND (stopped_at IS NOT NULL "
                "OR heartbeat_at < clock_timestamp() - lease_seconds * interval '1 second') "
                "ORDER BY id FOR UPDATE",
                (self.instance,),
            )]  # fmt: skip
            # The owner is tested on the site row itself (not through a join), so a row another
            # instance claimed since this statement's snapshot is re-checked and skipped.
            free = await tx.fetchall(
                "SELECT id FROM fleet_sites WHERE (owner IS NULL OR owner = ANY(?) OR owner NOT IN "
                "(SELECT id FROM fleet_instances)) AND NOT (id = ANY(?)) "
                "ORDER BY owner IS NOT NULL, id LIMIT ? FOR UPDATE SKIP LOCKED",
                (gone, list(skip), limit),
            )
            if not free:
                return []
            rows = await tx.fetchall(
                "UPDATE fleet_sites SET owner = ?, epoch = epoch + 1 WHERE id = ANY(?) "
                "RETURNING id, epoch, doc",
                (self.instance, [r[0] for r in free]),
            )
            until = await tx.fetchone(
                "SELECT now() + make_interval(secs => ?)", (self.lease_s,)
            )
        assert until is not None
        return [Claim(str(r[0]), int(r[1]), json.loads(r[2]), until[0]) for r in rows]

    async def release(self, sites: dict[str, int]) -> int:
        """Give up these sites (site -> the epoch held); an epoch that moved on is left."""
        if not sites:
            return 0
        async with self.storage.driver.transaction() as tx:
            return await tx.executemany(
                "UPDATE fleet_sites SET owner = NULL WHERE id = ? AND owner = ? AND epoch = ?",
                [(s, self.instance, e) for s, e in sites.items()],
            )

    async def stopped(self) -> None:
        async with self.storage.driver.transaction() as tx:
            await tx.execute(
                "UPDATE fleet_instances SET stopped_at = now(), sites_owned = 0 WHERE id = ?",
                (self.instance,),
            )

    async def live_instances(self) -> int:
        """Instances that have beaten within their lease and not stopped (this one included)."""
        rows = await self.storage.query(
            "SELECT COUNT(*) FROM fleet_instances WHERE stopped_at IS NULL AND "
            "heartbeat_at > now() - lease_seconds * interval '1 second'"
        )
        return max(1, int(rows[0][0]))

    async def instances(self) -> list[tuple[str, int, float]]:
        """Every running instance: id, sites owned, seconds since its heartbeat."""
        rows = await self.storage.query(
            "SELECT id, sites_owned, extract(epoch from now() - heartbeat_at) "
            "FROM fleet_instances WHERE stopped_at IS NULL ORDER BY id"
        )
        return [(str(r[0]), int(r[1]), float(r[2])) for r in rows]

    async def site_count(self) -> int:
        rows = await self.storage.query("SELECT sites FROM fleet_catalogue WHERE id = 1")
        return int(rows[0][0])


async def fleet_view(storage: Storage) -> tuple[list[InstanceRow], list[SiteLease]]:
    """Every instance and every site's lease, as ``GET /api/v1/fleet`` shows them."""
    inst = await storage.query(
        "SELECT i.id, i.started_at, i.heartbeat_at, i.stopped_at, "
        "(SELECT COUNT(*) FROM fleet_leases s WHERE s.owner = i.id AND s.lease_until > now()) "
        "FROM fleet_instances i ORDER BY i.id"
    )
    sites = await storage.query(
        "SELECT id, owner, epoch, lease_until FROM fleet_leases ORDER BY id"
    )
    return (
        [InstanceRow(str(r[0]), r[1], r[2], int(r[4]), r[3]) for r in inst],
        [SiteLease(str(r[0]), r[1], int(r[2]), r[3]) for r in sites],
    )
