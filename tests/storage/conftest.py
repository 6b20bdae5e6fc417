import pytest

from flexd.storage import Storage


@pytest.fixture
def target(database):
    """Where a store lives (tests/conftest.py's ``database``, once per backend)."""
    return database


@pytest.fixture
async def store(target):
    s = await Storage.open(target)
    yield s
    await s.close()
