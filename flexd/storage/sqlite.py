"""SQLite storage through aiosqlite: one file, WAL, schema migrations with a version table.

Instants are stored as UTC text ``YYYY-MM-DDTHH:MM:SSZ`` (so text order is time order), money
and energy that billing reads as Decimal text, structured payloads as JSON text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite

from flexd.storage.rows import (
    DISPATCH_COLS,
    RATED_COLS,
    DispatchRow,
    RatedRow,
    ReadingRow,
    dispatch_from_db,
    parse_ts,
    rated_from_db,
    ts,
)
from flexd.storage.schema import MIGRATIONS

__all__ = ["DispatchRow", "RatedRow", "ReadingRow", "Storage", "parse_ts", "ts"]


class Storage:
    """All persistence for the daemon. One instance per process; every write is a transaction."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> Storage:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA foreign_keys=ON")
        self = cls(db, path)
        await self._migrate()
        return self

    async def close(self) -> None:
        await self._db.close()

    async def _migrate(self) -> None:
        await self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        async with self._db.execute("SELECT MAX(version) FROM schema_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row and row[0] is not None else 0
        for version, sql in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            await self._db.executescript(
                f"BEGIN; {sql}; INSERT INTO schema_version VALUES ({version}); COMMIT;"
            )

    async def schema_version(self) -> int:
        async with self._db.execute("SELECT MAX(version) FROM schema_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    async def ping(self) -> bool:
        async with self._db.execute("SELECT 1") as cur:
            return (await cur.fetchone()) is not None

    # --- key/value daemon state -----------------------------------------------------------

    async def get_kv(self, key: str) -> str | None:
        async with self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def set_kv(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO kv VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
        await self._db.commit()

    # --- preferences ------------------------------------------------------------------------

    async def get_preferences(self, device_id: str) -> dict[str, Any] | None:
        async with self._db.execute(
            "SELECT payload FROM preferences WHERE device_id = ?", (device_id,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else dict(json.loads(row[0]))

    async def put_preferences(self, device_id: str, payload: dict[str, Any], at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO preferences VALUES (?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET "
            "payload = excluded.payload, updated_at = excluded.updated_at",
            (device_id, json.dumps(payload), ts(at)),
        )
        await self._db.commit()

    # --- plans ------------------------------------------------------------------------------

    async def add_plan(
        self, site: str, at: datetime, reason: str, objective_p: Decimal, payload: dict[str, Any]
    ) -> int:
        cur = await self._db.execute(
            "INSERT INTO plans (site, created_at, reason, objective_p, payload) VALUES (?,?,?,?,?)",
            (site, ts(at), reason, str(objective_p), json.dumps(payload)),
        )
        await self._db.commit()
        return int(cur.lastrowid or 0)

    async def latest_plan(self, site: str) -> tuple[datetime, str, dict[str, Any]] | None:
        async with self._db.execute(
            "SELECT created_at, reason, payload FROM plans WHERE site = ? ORDER BY id DESC LIMIT 1",
            (site,),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else (parse_ts(row[0]), row[1], json.loads(row[2]))

    # --- dispatches -------------------------------------------------------------------------

    async def add_dispatch(
        self,
        *,
        site: str,
        meter: str,
        device_id: str,
        start: datetime,
        end: datetime,
        kind: str,
        status: str,
        at: datetime,
        location: str = "home",
        kwh: Decimal = Decimal(0),
    ) -> DispatchRow:
        row = DispatchRow(
            str(uuid.uuid4()), site, meter, device_id, start, end, kind, status, location, kwh
        )
        await self._db.execute(
            f"INSERT INTO dispatches ({DISPATCH_COLS}, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.id, site, meter, device_id, ts(start), ts(end), kind, status, location,
                str(kwh), ts(at), ts(at),
            ),
        )  # fmt: skip
        await self._db.commit()
        return row

    async def update_dispatch(
        self,
        dispatch_id: str,
        *,
        at: datetime,
        status: str | None = None,
        end: datetime | None = None,
        kwh: Decimal | None = None,
    ) -> None:
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
        await self._db.execute(f"UPDATE dispatches SET {', '.join(sets)} WHERE id = ?", args)
        await self._db.commit()

    async def get_dispatch(self, dispatch_id: str) -> DispatchRow | None:
        async with self._db.execute(
            f"SELECT {DISPATCH_COLS} FROM dispatches WHERE id = ?", (dispatch_id,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else dispatch_from_db(row)

    async def dispatches(
        self,
        *,
        device_id: str | None = None,
        meter: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[DispatchRow]:
        """Dispatches overlapping [start, end), filtered, in start order."""
        where, args = [], []
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
        async with self._db.execute(sql + " ORDER BY start, id", args) as cur:
            return [dispatch_from_db(r) for r in await cur.fetchall()]

    # --- bump requests ----------------------------------------------------------------------

    async def bump_by_key(self, device_id: str, key: str) -> str | None:
        async with self._db.execute(
            "SELECT dispatch_id FROM bump_requests WHERE device_id = ? AND idempotency_key = ?",
            (device_id, key),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def add_bump(self, device_id: str, key: str, dispatch_id: str, at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO bump_requests VALUES (?, ?, ?, ?)", (device_id, key, dispatch_id, ts(at))
        )
        await self._db.commit()

    # --- readings ---------------------------------------------------------------------------

    async def upsert_readings(self, rows: Iterable[ReadingRow], at: datetime) -> int:
        """Insert or replace readings in one transaction; returns how many rows changed."""
        n = 0
        await self._db.execute("BEGIN")
        try:
            for r in rows:
                cur = await self._db.execute(
                    "INSERT INTO readings VALUES (?,?,?,?,?,?) "
                    "ON CONFLICT(meter, start, register) DO UPDATE SET kwh = excluded.kwh, "
                    "source = excluded.source, updated_at = excluded.updated_at "
                    "WHERE readings.kwh != excluded.kwh",
                    (r.meter, ts(r.start), r.register, str(r.kwh), r.source, ts(at)),
                )
                n += max(0, cur.rowcount)
            await self._db.commit()
        except BaseException:
            await self._db.rollback()
            raise
        return n

    async def readings(self, meter: str, start: datetime, end: datetime) -> list[ReadingRow]:
        async with self._db.execute(
            "SELECT meter, start, register, kwh, source FROM readings "
            "WHERE meter = ? AND start >= ? AND start < ? ORDER BY start, register",
            (meter, ts(start), ts(end)),
        ) as cur:
            return [
                ReadingRow(r[0], parse_ts(r[1]), r[2], Decimal(r[3]), r[4])
                for r in await cur.fetchall()
            ]

    # --- rated slots ------------------------------------------------------------------------

    async def latest_rated(self, meter: str, start: datetime, end: datetime) -> list[RatedRow]:
        sql = (
            f"SELECT {RATED_COLS} FROM rated_slots r WHERE meter = ? AND start >= ? AND start < ?"
            " AND version = (SELECT MAX(version) FROM rated_slots x WHERE x.meter = r.meter"
            " AND x.start = r.start AND x.register = r.register) ORDER BY start, register"
        )
        async with self._db.execute(sql, (meter, ts(start), ts(end))) as cur:
            return [rated_from_db(r) for r in await cur.fetchall()]

    async def iter_rated(
        self, meter: str, start: datetime, end: datetime, all_versions: bool
    ) -> AsyncIterator[RatedRow]:
        """Rated slots in (start, register, version) order, streamed in pages."""
        if not all_versions:
            for row in await self.latest_rated(meter, start, end):
                yield row
            return
        sql = (
            f"SELECT {RATED_COLS} FROM rated_slots WHERE meter = ? AND start >= ? AND start < ?"
            " ORDER BY start, register, version"
        )
        async with self._db.execute(sql, (meter, ts(start), ts(end))) as cur:
            while rows := await cur.fetchmany(1000):
                for r in rows:
                    yield rated_from_db(r)

    async def add_rated(self, rows: Sequence[RatedRow]) -> int:
        """Store a new version of each slot whose rating differs from its latest version."""
        if not rows:
            return 0
        meter = rows[0].meter
        lo = min(r.start for r in rows)
        hi = max(r.start for r in rows)
        latest = {
            (r.start, r.register): r
            for r in await self.latest_rated(meter, lo, hi.replace(second=1))
        }
        fresh = []
        for r in rows:
            prev = latest.get((r.start, r.register))
            same = prev is not None and (prev.kwh, prev.band, prev.unit_rate_p, prev.cost_p) == (
                r.kwh, r.band, r.unit_rate_p, r.cost_p,
            )  # fmt: skip
            if not same:
                version = 1 if prev is None else prev.version + 1
                fresh.append((
                    r.meter, ts(r.start), r.register, version, r.settlement_date,
                    r.settlement_period, str(r.kwh), r.band, str(r.unit_rate_p), str(r.cost_p),
                    ts(r.rated_at), r.reason,
                ))  # fmt: skip
        if fresh:
            await self._db.executemany(
                "INSERT INTO rated_slots VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", fresh
            )
            await self._db.commit()
        return len(fresh)

    async def count_rated(self, meter: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM rated_slots", tuple[str, ...]()
        if meter is not None:
            sql, args = sql + " WHERE meter = ?", (meter,)
        async with self._db.execute(sql, args) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0
