"""A throwaway PostgreSQL database per test, on the local server (127.0.0.1:5432, trust auth).

Without a reachable server the PostgreSQL cases skip, unless FLEXD_REQUIRE_POSTGRES=1 (as
.ci/run sets it): then they fail, so CI can never pass them silently."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

ADMIN_URL = os.environ.get("FLEXD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _base() -> str:
    return ADMIN_URL.rsplit("/", 1)[0]


@asynccontextmanager
async def pg_database() -> AsyncIterator[str]:
    """Create a fresh database, yield its URL, drop it."""
    import psycopg

    name = f"flexd_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await psycopg.AsyncConnection.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("FLEXD_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"no PostgreSQL at {ADMIN_URL}: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{_base()}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
