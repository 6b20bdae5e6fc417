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
                "INSERT INTO fleet_instances (id, started_at, heartbeat_at, lease_seconds) "
                "VALUES (?, now(), now(), ?) ON CONFLICT (id) DO UPDATE SET started_at = now(), "
                "heartbeat_at = now(), lease_seconds = excluded.lease_seconds, sites_owned = 0, "
                "stopped_at = NULL",
                (self.instance, self.lease_s),
            )

    async def renew(self) -> dict[str, int]:
        """Beat; returns site -> epoch of the sites this instance still owns."""
        async with self.storage.driver.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT id, epoch FROM fleet_sites WHERE owner = ?", (self.instance,)
            )
            await tx.execute(
                "UPDATE fleet_instances SET heartbeat_at = now(), sites_owned = ? WHERE id = ?",
                (len(rows), self.instance),
            )
        return {str(r[0]): int(r[1]) for r in rows}

    async def claim(self, limit: int) -> list[Claim]:
        """Take up to ``limit`` free sites, those whose owner went quiet longest ago first."""
        if limit <= 0:
            return []
        async with self.storage.driver.transaction() as tx:
            free = await tx.fetchall(
                "SELECT s.id FROM fleet_sites s LEFT JOIN fleet_instances i ON i.id = s.owner "
                "WHERE s.owner IS NULL OR i.id IS NULL OR i.stopped_at IS NOT NULL "
                "OR i.heartbeat_at < now() - i.lease_seconds * interval '1 second' "
                "ORDER BY i.heartbeat_at NULLS FIRST, s.id LIMIT ? "
                "FOR UPDATE OF s SKIP LOCKED",
                (limit,),
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
