"""The two database engines behind one small interface: a write transaction that commits or
rolls back whole, and reads of committed data.

SQL is written once with ``?`` placeholders; the PostgreSQL driver turns them into ``%s``.

- SQLite (the embedded default): one writer connection whose transactions are serialised by an
  asyncio lock and begin IMMEDIATE (so two coroutines never interleave statements of two
  transactions: the "cannot start a transaction within a transaction" defect), and a second
  connection for reads, which in WAL mode see the last committed state.
- PostgreSQL: a psycopg 3 connection pool; each transaction has a connection of its own.
  ``Tx.lock(key)`` takes a transaction-scoped advisory lock, so read-then-write sequences on one
  key (a meter's rating versions, a device's idempotency key) never race between instances.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from flexd.storage import fence as fencing

Row = tuple[Any, ...]


class Tx(Protocol):
    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement; returns the rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """One statement over many rows (batched); returns the rows they changed in all."""
        ...

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Row | None: ...

    async def lock(self, key: str) -> None:
        """Serialise this transaction with every other one that locks ``key``."""
        ...

    async def lock_many(self, keys: Sequence[str]) -> None:
        """:meth:`lock` on each key, in one statement, in a fixed order (no deadlock between
        two transactions locking overlapping sets)."""
        ...


class Driver(Protocol):
    dialect: str  # "sqlite" | "postgresql"
    where: str  # for logs and errors: a path, or a URL without its password

    def transaction(self) -> Any:  # an async context manager yielding a Tx
        ...

    def reader(self) -> Any:  # an async context manager yielding a Tx (reads only)
        ...

    async def close(self) -> None: ...


# --- SQLite ---------------------------------------------------------------------------------


class _SqliteTx:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        cur = await self.db.execute(sql, tuple(args))
        return max(0, cur.rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        cur = await self.db.executemany(sql, [tuple(r) for r in rows])
        return max(0, cur.rowcount)

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        async with self.db.execute(sql, tuple(args)) as cur:
            return [tuple(r) for r in await cur.fetchall()]

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        async with self.db.execute(sql, tuple(args)) as cur:
            row = await cur.fetchone()
        return None if row is None else tuple(row)

    async def lock(self, key: str) -> None:
        return None  # every write transaction is already serialised

    async def lock_many(self, keys: Sequence[str]) -> None:
        return None


class SqliteDriver:
    dialect = "sqlite"

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, path: Path):
        self._w = writer
        self._r = reader
        self._lock = asyncio.Lock()
        self.path = path
        self.where = str(path)

    @classmethod
    async def open(cls, path: Path) -> SqliteDriver:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level None: transactions are exactly the BEGIN/COMMIT written here.
        writer = await aiosqlite.connect(path, isolation_level=None)
        try:
            await writer.execute("PRAGMA busy_timeout=10000")
            await writer.execute("PRAGMA journal_mode=WAL")
            await writer.execute("PRAGMA synchronous=NORMAL")
            await writer.execute("PRAGMA foreign_keys=ON")
            reader = await aiosqlite.connect(path, isolation_level=None)
            await reader.execute("PRAGMA busy_timeout=10000")
        except BaseException:
            await writer.close()
            raise
        return cls(writer, reader, path)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._lock:
            await self._w.execute("BEGIN IMMEDIATE")
            try:
                tx = _SqliteTx(self._w)
                if (f := fencing.FENCE.get()) is not None:
                    await fencing.check(tx, f, self.dialect)
                yield tx
            except BaseException:
                await self._w.execute("ROLLBACK")
                raise
            await self._w.execute("COMMIT")

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[Tx]:
        yield _SqliteTx(self._r)

    async def close(self) -> None:
        await self._r.close()
        await self._w.close()


# --- PostgreSQL -----------------------------------------------------------------------------


def _pg(sql: str) -> str:
    # Our SQL has no literal "?" or "%": placeholders are the only ones.
    return sql.replace("%", "%%").replace("?", "%s")


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        cur = await self.conn.execute(_pg(sql), tuple(args))
        return max(0, cur.rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        async with self.conn.cursor() as cur:
            # Pipelined by psycopg: one round trip for the batch; rowcount sums the statements.
            await cur.executemany(_pg(sql), [tuple(r) for r in rows])
            return max(0, cur.rowcount)

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        cur = await self.conn.execute(_pg(sql), tuple(args))
        return [tuple(r) for r in await cur.fetchall()]

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        cur = await self.conn.execute(_pg(sql), tuple(args))
        row = await cur.fetchone()
        return None if row is None else tuple(row)

    async def lock(self, key: str) -> None:
        await self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(key),))

    async def lock_many(self, keys: Sequence[str]) -> None:
        if keys:
            await self.conn.execute(
                "SELECT pg_advisory_xact_lock(k) FROM "
                "(SELECT DISTINCT unnest(%s::bigint[]) AS k ORDER BY 1) AS s",
                (sorted(_lock_key(k) for k in keys),),
            )


def _lock_key(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


class PostgresDriver:
    dialect = "postgresql"

    def __init__(self, pool: Any, where: str) -> None:
        self._pool = pool
        self.where = where

    @classmethod
    async def open(
        cls, url: str, password: str | None = None, max_size: int = 10
    ) -> PostgresDriver:
        import psycopg
        from psycopg_pool import AsyncConnectionPool

        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 10}
        if password is not None:
            kwargs["password"] = password
        # Fail fast with the server's own reason (bad host, no such database) before pooling.
        conn = await psycopg.AsyncConnection.connect(url, **kwargs)
        await conn.close()
        pool = AsyncConnectionPool(url, min_size=1, max_size=max_size, kwargs=kwargs, open=False)
        await pool.open(wait=True, timeout=10)
        return cls(pool, redact(url))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._pool.connection() as conn, conn.transaction():
            tx = _PgTx(conn)
            if (f := fencing.FENCE.get()) is not None:  # a fleet site's write: its epoch first
                await fencing.check(tx, f, self.dialect)
            yield tx

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[Tx]:
        async with self._pool.connection() as conn:
            yield _PgTx(conn)

    async def close(self) -> None:
        await self._pool.close()


def redact(url: str) -> str:
    """The URL without a password, for logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
