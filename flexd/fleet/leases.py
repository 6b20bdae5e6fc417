"""Leases on sites, kept in PostgreSQL with the database's own clock.

- A claim takes unowned or expired sites with ``FOR UPDATE SKIP LOCKED`` (two instances
  claiming at once take different sites, and neither waits for the other) and increments each
  one's epoch in the same statement.
- A renewal extends every lease the instance still holds and returns them: a site missing from
  the answer was taken over (its lease expired while the instance was paused or cut off).
- A release clears the owner and the lease but keeps the epoch, so the next claim is higher.

Lease instants are ``now()`` on the server: instances' clocks never meet, and the daemon's own
clock may be simulated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flexd.storage import Storage


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
        async with self.storage.driver.transaction() as tx:
            await tx.execute(
                "INSERT INTO fleet_instances (id, started_at, heartbeat_at) "
                "VALUES (?, now(), now()) ON CONFLICT (id) DO UPDATE SET started_at = now(), "
                "heartbeat_at = now(), sites_owned = 0, stopped_at = NULL",
                (self.instance,),
            )

    async def renew(self) -> dict[str, int]:
        """Extend every lease this instance holds; returns site -> epoch of those it holds."""
        async with self.storage.driver.transaction() as tx:
            rows = await tx.fetchall(
                "UPDATE fleet_sites SET lease_until = now() + make_interval(secs => ?) "
                "WHERE owner = ? RETURNING id, epoch",
                (self.lease_s, self.instance),
            )
            await tx.execute(
                "UPDATE fleet_instances SET heartbeat_at = now(), sites_owned = ? WHERE id = ?",
                (len(rows), self.instance),
            )
        return {str(r[0]): int(r[1]) for r in rows}

    async def claim(self, limit: int) -> list[Claim]:
        """Take up to ``limit`` unowned or expired sites, longest-expired first."""
        if limit <= 0:
            return []
        async with self.storage.driver.transaction() as tx:
            free = await tx.fetchall(
                "SELECT id FROM fleet_sites WHERE owner IS NULL OR lease_until < now() "
                "ORDER BY lease_until NULLS FIRST, id LIMIT ? FOR UPDATE SKIP LOCKED",
                (limit,),
            )
            if not free:
                return []
            rows = await tx.fetchall(
                "UPDATE fleet_sites SET owner = ?, epoch = epoch + 1, "
                "lease_until = now() + make_interval(secs => ?) WHERE id = ANY(?) "
                "RETURNING id, epoch, doc, lease_until",
                (self.instance, self.lease_s, [r[0] for r in free]),
            )
        return [Claim(str(r[0]), int(r[1]), json.loads(r[2]), r[3]) for r in rows]

    async def release(self, sites: dict[str, int]) -> int:
        """Give up these leases (site -> the epoch held); an epoch that moved on is left."""
        if not sites:
            return 0
        async with self.storage.driver.transaction() as tx:
            return await tx.executemany(
                "UPDATE fleet_sites SET owner = NULL, lease_until = NULL "
                "WHERE id = ? AND owner = ? AND epoch = ?",
                [(s, self.instance, e) for s, e in sites.items()],
            )

    async def stopped(self) -> None:
        async with self.storage.driver.transaction() as tx:
            await tx.execute(
                "UPDATE fleet_instances SET stopped_at = now(), sites_owned = 0 WHERE id = ?",
                (self.instance,),
            )

    async def live_instances(self) -> int:
        """Instances that have beaten within a lease and not stopped (this one included)."""
        rows = await self.storage.query(
            "SELECT COUNT(*) FROM fleet_instances WHERE stopped_at IS NULL AND "
            "heartbeat_at > now() - make_interval(secs => ?)",
            (self.lease_s,),
        )
        return max(1, int(rows[0][0]))

    async def site_count(self) -> int:
        rows = await self.storage.query("SELECT COUNT(*) FROM fleet_sites")
        return int(rows[0][0])


async def fleet_view(storage: Storage) -> tuple[list[InstanceRow], list[SiteLease]]:
    """Every instance and every site's lease, as ``GET /api/v1/fleet`` shows them."""
    inst = await storage.query(
        "SELECT i.id, i.started_at, i.heartbeat_at, i.stopped_at, "
        "(SELECT COUNT(*) FROM fleet_sites s WHERE s.owner = i.id AND s.lease_until > now()) "
        "FROM fleet_instances i ORDER BY i.id"
    )
    sites = await storage.query("SELECT id, owner, epoch, lease_until FROM fleet_sites ORDER BY id")
    return (
        [InstanceRow(str(r[0]), r[1], r[2], int(r[4]), r[3]) for r in inst],
        [SiteLease(str(r[0]), r[1], int(r[2]), r[3]) for r in sites],
    )
