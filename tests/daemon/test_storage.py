from datetime import UTC, datetime, timedelta
from decimal import Decimal

from flexd.storage import RatedRow, ReadingRow, Storage
from flexd.storage.schema import MIGRATIONS

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


async def test_migrations_are_idempotent_and_wal(tmp_path):
    db = tmp_path / "f.sqlite"
    s = await Storage.open(db)
    assert await s.schema_version() == len(MIGRATIONS)
    await s.close()
    s = await Storage.open(db)
    assert await s.schema_version() == len(MIGRATIONS)
    assert (tmp_path / "f.sqlite-wal").exists()
    await s.close()


async def test_readings_upsert_counts_only_changes(tmp_path):
    s = await Storage.open(tmp_path / "f.sqlite")
    rows = [
        ReadingRow("m1", T0 + timedelta(minutes=30 * i), "import", Decimal("0.5")) for i in range(4)
    ]
    assert await s.upsert_readings(rows, T0) == 4
    assert await s.upsert_readings(rows, T0) == 0
    rows[1] = ReadingRow("m1", rows[1].start, "import", Decimal("0.75"))
    assert await s.upsert_readings(rows, T0) == 1
    got = await s.readings("m1", T0, T0 + timedelta(hours=2))
    assert [r.kwh for r in got] == [Decimal("0.5"), Decimal("0.75"), Decimal("0.5"), Decimal("0.5")]
    await s.close()


def _rated(start, cost, version=0):
    return RatedRow(
        "m1",
        start,
        "import",
        version,
        "2026-01-15",
        25,
        Decimal("1.00"),
        "peak",
        Decimal("25"),
        Decimal(cost),
        T0,
        "test",
    )


async def test_rated_versions_only_when_rating_changes(tmp_path):
    s = await Storage.open(tmp_path / "f.sqlite")
    assert await s.add_rated([_rated(T0, "25.00")]) == 1
    assert await s.add_rated([_rated(T0, "25.00")]) == 0  # nothing rated twice
    assert await s.add_rated([_rated(T0, "7.00")]) == 1
    latest = await s.latest_rated("m1", T0, T0 + timedelta(minutes=30))
    assert [(r.version, r.cost_p) for r in latest] == [(2, Decimal("7.00"))]
    every = [r async for r in s.iter_rated("m1", T0, T0 + timedelta(minutes=30), True)]
    assert [r.version for r in every] == [1, 2]
    await s.close()


async def test_dispatch_overlap_query(tmp_path):
    s = await Storage.open(tmp_path / "f.sqlite")
    d = await s.add_dispatch(
        site="s",
        meter="m1",
        device_id="c",
        start=T0,
        end=T0 + timedelta(hours=1),
        kind="smart",
        status="planned",
        at=T0,
    )
    assert await s.dispatches(device_id="c", start=T0 + timedelta(minutes=59)) == [d]
    assert await s.dispatches(device_id="c", start=T0 + timedelta(hours=1)) == []
    await s.update_dispatch(d.id, at=T0, status="completed", kwh=Decimal("3.2"))
    (row,) = await s.dispatches(status="completed")
    assert row.kwh == Decimal("3.2")
    await s.close()
