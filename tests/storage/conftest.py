import pytest

from flexd.storage import Storage
from tests.pg import pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def target(request, tmp_path):
    """Where a store lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield tmp_path / "store.sqlite"
        return
    async with pg_database() as url:
        yield url


@pytest.fixture
async def store(target):
    s = await Storage.open(target)
    yield s
    await s.close()
