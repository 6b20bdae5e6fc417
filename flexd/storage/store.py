"""All persistence for the daemon, on SQLite or PostgreSQL (:mod:`flexd.storage.driver`).

Every write is one transaction that commits whole or changes nothing; callers update their
memory only after it returns. Instants are stored as UTC text ``YYYY-MM-DDTHH:MM:SSZ`` (text
order is time order), money and energy as Decimal text, payloads as JSON text.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flexd.storage.driver import Driver, PostgresDriver, Row, SqliteDriver, Tx
from flexd.storage.group_commit import KvGroupCommit
from flexd.storage.plan_writes import PlanGroupCommit
from flexd.storage.rows import (
    DISPATCH_COLS,
    DISPATCH_INSERT,
    RATED_COLS,
    DispatchRow,
    RatedRow,
    ReadingRow,
    dispatch_from_db,
    parse_ts,
    rated_from_db,
    ts,
)
from flexd.storage.schema import MIGRATIONS, migration

PAGE = 1000


def is_url(target: Path | str) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


@dataclass(frozen=True, slots=True)
class BumpRecord:
    """What the first request with an idempotency key created and answered."""

    dispatch_id: str
    request_hash: str
    status: int
    body: dict[str, Any]


class Storage:
    """One instance per process. Safe to call from many coroutines at once."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.kv_writes = KvGroupCommit(driver)
        self.plan_writes = PlanGroupCommit(driver)

    @property
    def dialect(self) -> str:
        return self.driver.dialect

    @property
    def where(self) -> str:
        return self.driver.where

    @classmethod
    async def open(cls, target: Path | str, password: str | None = None) -> Storage:
        """A SQLite file path, or a ``postgresql://user@host:port/db`` URL."""
        driver: Driver
        if is_url(target):
            driver = await PostgresDriver.open(str(target), password)
        else:
            driver = await SqliteDriver.open(Path(target))
        self = cls(driver)
        try:
            await self._migrate()
        except BaseException:
            await driver.close()
            raise
        return self

    async def close(self) -> None:
        await self.driver.close()

    async def _migrate(self) -> None:
        async with self.driver.transaction() as tx:
            await tx.lock("flexd:migrate")  # two instances starting together migrate once
            await tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            current = await _version(tx)
            for version, sql in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                for stmt in migration(sql, self.dialect).split(";"):
                    if stmt.strip():
                        await tx.execute(stmt)
                await tx.execute("INSERT INTO schema_version VALUES (?)", (version,))

    async def schema_version(self) -> int:
        async with self.driver.reader() as tx:
            return await _version(tx)

    async def ping(self) -> bool:
        async with self.driver.reader() as tx:
            return await tx.fetchone("SELECT 1") is not None

    async def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        """Read-only SQL for operators and tests (placeholders are ``?`` on both engines)."""
        async with self.driver.reader() as tx:
            return await tx.fetchall(sql, args)

    async def integrity_ok(self) -> bool:
        """SQLite's integrity_check (PostgreSQL checks its pages itself: always True)."""
        if self.dialect != "sqlite":
            return True
        rows = await self.query("PRAGMA integrity_check")
        return rows == [("ok",)]

    # --- key/value daemon state -----------------------------------------------------------

    async def get_kv(self, key: str) -> str | None:
        async with self.driver.reader() as tx:
            row = await tx.fetchone("SELECT value FROM kv WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set_kv(self, key: str, value: str) -> None:
        """Committed when it returns; calls made together share a transaction (group commit:
        flexd.storage.group_commit)."""
        await self.kv_writes.set(key, value)

    # --- preferences ------------------------------------------------------------------------

    async def get_preferences(self, device_id: str) -> dict[str, Any] | None:
        async with self.driver.reader() as tx:
            row = await tx.fetchone(
                "SELECT payload FROM preferences WHERE device_id = ?", (device_id,)
            )
        return None if row is None else dict(json.loads(row[0]))

    async def put_preferences(self, device_id: str, payload: dict[str, Any], at: datetime) -> None:
        async with self.driver.transaction() as tx:
            await tx.execute(
                "INSERT INTO preferences VALUES (?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET "
                "payload = excluded.payload, updated_at = excluded.updated_at",
                (device_id, json.dumps(payload), ts(at)),
            )

    # --- plans ------------------------------------------------------------------------------

    async def store_plan(
        self, site: str, meter: str, at: datetime, reason: str, objective_p: Decimal,
        payload: dict[str, Any], smart: Mapping[str, Sequence[tuple[datetime, datetime]]],
    ) -> None:  # fmt: skip
        """A new plan and the SMART dispatches it implies, in one transaction (a plan stored
        without its dispatches, or half of them cancelled, would rate the night wrongly). Per
        charger in ``smart`` (its planned charging intervals): planned SMART dispatches that
        have not started are cancelled; one running now is kept (a dispatch is a fact once it
        has started) and its end moved to the plan's, or to now where the plan stops charging
        now; the plan's later intervals are added. Plans stored together share a transaction
        (group commit: flexd.storage.plan_writes)."""
        await self.plan_writes.store(site, meter, at, reason, objective_p, payload, smart)

    async def latest_plan(self, site: str) -> tuple[datetime, str, dict[str, Any]] | None:
        async with self.driver.reader() as tx:
            row = await tx.fetchone(
                "SELECT created_at, reason, payload FROM plans WHERE site = ? "
                "ORDER BY id DESC LIMIT 1",
                (site,),
            )
        return None if row is None else (parse_ts(row[0]), row[1], json.loads(row[2]))

    # --- dispatches -------------------------------------------------------------------------

    async def add_dispatch(
        self, *, site: str, meter: str, device_id: str, start: datetime, end: datetime,
        kind: str, status: str, at: datetime, location: str = "home", kwh: Decimal = Decimal(0),
    ) -> DispatchRow:  # fmt: skip
        async with self.driver.transaction() as tx:
            return await _insert_dispatch(
                tx, site, meter, device_id, start, end, kind, status, at, location, kwh
            )

    async def update_dispatch(
        self, dispatch_id: str, *, at: datetime, status: str | None = None,
        end: datetime | None = None, kwh: Decimal | None = None,
    ) -> None:  # fmt: skip
        sets, args = ["updated_at = ?"], [ts(at)]
        if status is not None:
            sets.append("status = ?")
            args.append(status)
        if end is not None:
            sets.append('"end" = ?')
            args.append(ts(end))
        if kwh is not None:
            sets.append("kwh = ?")
            args.append(str(kwh))
        args.append(dispatch_id)
        async with self.driver.transaction() as tx:
            await tx.execute(f"UPDATE dispatches SET {', '.join(sets)} WHERE id = ?", args)

    async def get_dispatch(self, dispatch_id: str) -> DispatchRow | None:
        async with self.driver.reader() as tx:
            row = await tx.fetchone(
                f"SELECT {DISPATCH_COLS} FROM dispatches WHERE id = ?", (dispatch_id,)
            )
        return None if row is None else dispatch_from_db(row)

    async def dispatches(
        self, *, device_id: str | None = None, meter: str | None = None,
        status: str | None = None, kind: str | None = None, start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[DispatchRow]:  # fmt: skip
        """Dispatches overlapping [start, end), filtered, in start order."""
        where: list[str] = []
        args: list[Any] = []
        for col, val in (("device_id", device_id), ("meter", meter), ("status", status),
                         ("kind", kind)):  # fmt: skip
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if start is not None:
            where.append('"end" > ?')
            args.append(ts(start))
        if end is not None:
            where.append("start < ?")
            args.append(ts(end))
        sql = f"SELECT {DISPATCH_COLS} FROM dispatches"
        if where:
            sql += " WHERE " + " AND ".join(where)
        async with self.driver.reader() as tx:
            rows = await tx.fetchall(sql + " ORDER BY start, id", args)
        return [dispatch_from_db(r) for r in rows]

    # --- bump requests (idempotency) --------------------------------------------------------

    async def bump_by_key(self, device_id: str, key: str) -> BumpRecord | None:
        async with self.driver.reader() as tx:
            return await _bump(tx, device_id, key)

    async def add_boost_once(
        self, *, site: str, meter: str, device_id: str, start: datetime, end: datetime,
        at: datetime, key: str | None, request_hash: str, status: int = 202,
    ) -> tuple[DispatchRow | None, BumpRecord | None]:  # fmt: skip
        """Create a BOOST dispatch, and with ``key`` record it under (device, key) in the same
        transaction. Returns (new dispatch, None), or (None, the first record) when the key was
        used before: then nothing is created."""
        async with self.driver.transaction() as tx:
            if key is not None:
                await tx.lock(f"bump:{device_id}:{key}")
                first = await _bump(tx, device_id, key)
                if first is not None:
                    return None, first
            row = await _insert_dispatch(
                tx, site, meter, device_id, start, end, "boost", "planned", at, "home",
                Decimal(0),
            )  # fmt: skip
            if key is not None:
                await tx.execute(
                    "INSERT INTO bump_requests (device_id, idempotency_key, dispatch_id, "
                    "created_at, request_hash, status, body) VALUES (?,?,?,?,?,?,?)",
                    (device_id, key, row.id, ts(at), request_hash, status,
                     json.dumps(row.to_json())),
                )  # fmt: skip
            return row, None

    # --- readings ---------------------------------------------------------------------------

    async def upsert_readings(self, rows: Iterable[ReadingRow], at: datetime) -> int:
        """Insert or replace readings in one transaction; returns how many rows changed."""
        batch = [(r.meter, ts(r.start), r.register, str(r.kwh), r.source, ts(at)) for r in rows]
        async with self.driver.transaction() as tx:
            return await tx.executemany(
                "INSERT INTO readings VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(meter, start, register) DO UPDATE SET kwh = excluded.kwh, "
                "source = excluded.source, updated_at = excluded.updated_at "
                "WHERE readings.kwh != excluded.kwh",
                batch,
            )

    async def readings(self, meter: str, start: datetime, end: datetime) -> list[ReadingRow]:
        async with self.driver.reader() as tx:
            rows = await tx.fetchall(
                "SELECT meter, start, register, kwh, source FROM readings "
                "WHERE meter = ? AND start >= ? AND start < ? ORDER BY start, register",
                (meter, ts(start), ts(end)),
            )
        return [ReadingRow(r[0], parse_ts(r[1]), r[2], Decimal(r[3]), r[4]) for r in rows]

    # --- rated slots ------------------------------------------------------------------------

    async def latest_rated(self, meter: str, start: datetime, end: datetime) -> list[RatedRow]:
        async with self.driver.reader() as tx:
            return await _latest_rated(tx, meter, start, end)

    async def iter_rated(
        self, meter: str, start: datetime, end: datetime, all_versions: bool
    ) -> AsyncIterator[RatedRow]:
        """Rated slots in (start, register, version) order, read in pages (keyset paging: no
        cursor or transaction is held open while the caller streams them)."""
        if not all_versions:
            for row in await self.latest_rated(meter, start, end):
                yield row
            return
        after: tuple[str, str, int] = (ts(start), "", -1)
        while True:
            async with self.driver.reader() as tx:
                rows = await tx.fetchall(
                    f"SELECT {RATED_COLS} FROM rated_slots WHERE meter = ? AND start < ? AND "
                    "(start > ? OR (start = ? AND "
                    "(register > ? OR (register = ? AND version > ?))))"
                    f" ORDER BY start, register, version LIMIT {PAGE}",
                    (meter, ts(end), after[0], after[0], after[1], after[1], after[2]),
                )
            for r in rows:
                yield rated_from_db(r)
            if len(rows) < PAGE:
                return
            last = rows[-1]
            after = (last[1], last[2], int(last[3]))

    async def add_rated(self, rows: Sequence[RatedRow]) -> int:
        """Store a new version of each slot whose rating differs from its latest version;
        returns how many were stored."""
        return len(await self.add_rated_versions(rows))

    async def add_rated_versions(self, rows: Sequence[RatedRow]) -> list[RatedRow]:
        """As :meth:`add_rated`, returning the stored rows with their versions. The read of
        the latest versions and the insert are one transaction, locked per meter."""
        if not rows:
            return []
        meter = rows[0].meter
        lo = min(r.start for r in rows)
        hi = max(r.start for r in rows)
        async with self.driver.transaction() as tx:
            await tx.lock(f"rated:{meter}")
            latest = {
                (r.start, r.register): r
                for r in await _latest_rated(tx, meter, lo, hi.replace(second=1))
            }
            fresh = []
            new: list[RatedRow] = []
            for r in rows:
                prev = latest.get((r.start, r.register))
                same = prev is not None and (
                    prev.kwh, prev.band, prev.unit_rate_p, prev.cost_p
                ) == (r.kwh, r.band, r.unit_rate_p, r.cost_p)  # fmt: skip
                if not same:
                    version = 1 if prev is None else prev.version + 1
                    new.append(dataclasses.replace(r, version=version))
                    fresh.append((
                        r.meter, ts(r.start), r.register, version, r.settlement_date,
                        r.settlement_period, str(r.kwh), r.band, str(r.unit_rate_p),
                        str(r.cost_p), ts(r.rated_at), r.reason,
                    ))  # fmt: skip
            await tx.executemany(
                "INSERT INTO rated_slots VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", fresh
            )
        return new

    async def count_rated(self, meter: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM rated_slots", tuple[str, ...]()
        if meter is not None:
            sql, args = sql + " WHERE meter = ?", (meter,)
        async with self.driver.reader() as tx:
            row = await tx.fetchone(sql, args)
        return int(row[0]) if row else 0


async def _version(tx: Tx) -> int:
    row = await tx.fetchone("SELECT MAX(version) FROM schema_version")
    return int(row[0]) if row and row[0] is not None else 0


async def _insert_dispatch(
    tx: Tx, site: str, meter: str, device_id: str, start: datetime, end: datetime, kind: str,
    status: str, at: datetime, location: str, kwh: Decimal,
) -> DispatchRow:  # fmt: skip
    row = DispatchRow(
        str(uuid.uuid4()), site, meter, device_id, start, end, kind, status, location, kwh
    )
    await tx.execute(
        DISPATCH_INSERT,
        (row.id, site, meter, device_id, ts(start), ts(end), kind, status, location, str(kwh),
         ts(at), ts(at)),
    )  # fmt: skip
    return row


async def _bump(tx: Tx, device_id: str, key: str) -> BumpRecord | None:
    row = await tx.fetchone(
        "SELECT dispatch_id, request_hash, status, body FROM bump_requests "
        "WHERE device_id = ? AND idempotency_key = ?",
        (device_id, key),
    )
    if row is None:
        return None
    return BumpRecord(str(row[0]), str(row[1]), int(row[2]), json.loads(row[3]) if row[3] else {})


async def _latest_rated(tx: Tx, meter: str, start: datetime, end: datetime) -> list[RatedRow]:
    sql = (
        f"SELECT {RATED_COLS} FROM rated_slots r WHERE meter = ? AND start >= ? AND start < ?"
        " AND version = (SELECT MAX(version) FROM rated_slots x WHERE x.meter = r.meter"
        " AND x.start = r.start AND x.register = r.register) ORDER BY start, register"
    )
    return [rated_from_db(r) for r in await tx.fetchall(sql, (meter, ts(start), ts(end)))]
