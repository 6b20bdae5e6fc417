"""One storage contract, run on SQLite and on PostgreSQL."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from flexd.storage import RatedRow, ReadingRow, Storage
from flexd.storage.schema import MIGRATIONS

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
HH = timedelta(minutes=30)


def rated(start, cost="1.00", meter="M1", register="import", reason="t"):
    return RatedRow(meter, start, register, 0, "2026-03-01", 1, Decimal("0.50"), "peak",
                    Decimal("24.50"), Decimal(cost), T0, reason)  # fmt: skip


async def test_migrations_run_once_and_reopen_cleanly(target):
    s = await Storage.open(target)
    assert await s.schema_version() == len(MIGRATIONS)
    await s.close()
    s = await Storage.open(target)
    assert await s.schema_version() == len(MIGRATIONS)
    assert await s.integrity_ok()
    await s.close()


async def test_readings_upsert_counts_changes_only(store):
    rows = [ReadingRow("M1", T0 + i * HH, "import", Decimal("0.5")) for i in range(4)]
    assert await store.upsert_readings(rows, T0) == 4
    assert await store.upsert_readings(rows, T0) == 0
    rows[1] = ReadingRow("M1", T0 + HH, "import", Decimal("0.7"))
    assert await store.upsert_readings(rows, T0) == 1
    got = await store.readings("M1", T0, T0 + 4 * HH)
    assert [r.kwh for r in got] == [Decimal("0.5"), Decimal("0.7"), Decimal("0.5"), Decimal("0.5")]


async def test_a_failed_transaction_leaves_nothing(store):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with store.driver.transaction() as tx:
            await tx.execute("INSERT INTO kv VALUES (?, ?)", ("k", "v"))
            raise Boom
    assert await store.get_kv("k") is None
    await store.set_kv("k", "v2")  # the store is still usable after the rollback
    assert await store.get_kv("k") == "v2"


async def test_rated_versions_only_on_change_and_latest_wins(store):
    assert await store.add_rated([rated(T0), rated(T0 + HH)]) == 2
    assert await store.add_rated([rated(T0), rated(T0 + HH)]) == 0
    assert await store.add_rated([rated(T0, "2.00")]) == 1
    latest = await store.latest_rated("M1", T0, T0 + 2 * HH)
    assert [(r.version, r.cost_p) for r in latest] == [(2, Decimal("2.00")), (1, Decimal("1.00"))]
    every = [r async for r in store.iter_rated("M1", T0, T0 + 2 * HH, True)]
    assert [(r.start, r.version) for r in every] == [(T0, 1), (T0, 2), (T0 + HH, 1)]


async def test_iter_rated_pages_through_a_year_in_order(store):
    rows = [rated(T0 + i * HH) for i in range(2500)]
    assert await store.add_rated(rows) == 2500
    got = [r async for r in store.iter_rated("M1", T0, T0 + 3000 * HH, True)]
    assert [r.start for r in got] == [r.start for r in rows]


async def test_two_sites_rating_the_same_half_hours_at_once_store_each_version_once(store):
    # Two raters (two sites on one meter, or a billing upload racing a close) write the same
    # half-hours concurrently: no error, no duplicate version, the latest is one of theirs.
    async def rate(cost):
        return await store.add_rated([rated(T0 + i * HH, cost) for i in range(48)])

    results = await asyncio.gather(*(rate(c) for c in ("1.00", "1.00", "2.00", "2.00")))
    assert sum(results) in (96, 144, 192)  # each distinct change stored once per switch
    every = [r async for r in store.iter_rated("M1", T0, T0 + 48 * HH, True)]
    versions = {}
    for r in every:
        versions.setdefault(r.start, []).append(r.version)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())


async def test_concurrent_reading_batches_lose_nothing(store):
    async def batch(meter):
        rows = [ReadingRow(meter, T0 + i * HH, "import", Decimal("0.25")) for i in range(48)]
        return await store.upsert_readings(rows, T0)

    assert await asyncio.gather(*(batch(f"M{i}") for i in range(20))) == [48] * 20
    for i in range(20):
        assert len(await store.readings(f"M{i}", T0, T0 + 48 * HH)) == 48


async def test_one_idempotency_key_makes_one_dispatch_under_a_race(store):
    async def bump():
        return await store.add_boost_once(
            site="s", meter="M1", device_id="car", start=T0, end=T0 + HH, at=T0, key="K1",
            request_hash="h",
        )  # fmt: skip

    results = await asyncio.gather(*(bump() for _ in range(50)))
    created = [row for row, first in results if row is not None]
    replays = [first for row, first in results if first is not None]
    assert len(created) == 1 and len(replays) == 49
    assert {r.dispatch_id for r in replays} == {created[0].id}
    assert len(await store.dispatches(device_id="car", kind="boost")) == 1


async def test_dispatches_kv_preferences_and_plans(store):
    d = await store.add_dispatch(site="s", meter="M1", device_id="car", start=T0, end=T0 + HH,
                                 kind="smart", status="planned", at=T0)  # fmt: skip
    await store.update_dispatch(d.id, at=T0, status="completed", kwh=Decimal("3.5"))
    got = await store.get_dispatch(d.id)
    assert got is not None and (got.status, got.kwh) == ("completed", Decimal("3.5"))
    assert [x.id for x in await store.dispatches(meter="M1", start=T0, end=T0 + HH)] == [d.id]
    await store.put_preferences("car", {"target_soc_pct": 80}, T0)
    assert await store.get_preferences("car") == {"target_soc_pct": 80}
    await store.store_plan("s", "M1", T0, "start", Decimal("1.5"), {"a": 1}, {})
    await store.store_plan("s", "M1", T0 + HH, "prices", Decimal("1.4"), {"a": 2}, {})
    assert (await store.latest_plan("s"))[1:] == ("prices", {"a": 2})


async def _smart(store, device="car"):
    rows = await store.dispatches(device_id=device, kind="smart")
    return sorted((d.start, d.end, d.status) for d in rows)


async def test_a_plan_and_its_smart_dispatches_are_stored_together(store):
    night = [(T0 + 2 * HH, T0 + 4 * HH), (T0 + 6 * HH, T0 + 7 * HH)]
    await store.store_plan("s", "M1", T0, "start", Decimal("1.5"), {"a": 1}, {"car": night})
    assert (await store.latest_plan("s"))[1:] == ("start", {"a": 1})
    assert await _smart(store) == [(s, e, "planned") for s, e in night]
    # Re-planned inside the first dispatch: it is kept (a fact once started) with the new end;
    # the one that has not started is cancelled; the new plan's later interval is added.
    now = T0 + 3 * HH
    await store.store_plan("s", "M1", now, "plug-in", Decimal("1.2"), {"a": 2},
                           {"car": [(T0 + 2 * HH, T0 + 5 * HH), (T0 + 8 * HH, T0 + 9 * HH)]})  # fmt: skip
    assert await _smart(store) == [
        (T0 + 2 * HH, T0 + 5 * HH, "planned"), (T0 + 6 * HH, T0 + 7 * HH, "cancelled"),
        (T0 + 8 * HH, T0 + 9 * HH, "planned"),
    ]  # fmt: skip
    # A plan that stops charging now ends the running dispatch now.
    later = T0 + 4 * HH
    await store.store_plan("s", "M1", later, "unplug", Decimal("0"), {"a": 3}, {"car": []})
    assert await _smart(store) == [
        (T0 + 2 * HH, later, "planned"), (T0 + 6 * HH, T0 + 7 * HH, "cancelled"),
        (T0 + 8 * HH, T0 + 9 * HH, "cancelled"),
    ]  # fmt: skip
    assert (await store.latest_plan("s"))[1:] == ("unplug", {"a": 3})


async def test_a_plan_whose_dispatches_fail_stores_nothing(store):
    night = [(T0 + 2 * HH, T0 + 4 * HH)]
    await store.store_plan("s", "M1", T0, "start", Decimal("1.5"), {"a": 1}, {"car": night})
    before = await _smart(store)
    with pytest.raises(TypeError):  # the second interval's end is not an instant
        await store.store_plan("s", "M1", T0 + HH, "prices", Decimal("1"), {"a": 2},
                               {"car": [(T0 + 5 * HH, T0 + 6 * HH), (T0 + 7 * HH, "bad")]})  # fmt: skip
    assert await _smart(store) == before  # the cancel and the first insert rolled back
    assert (await store.latest_plan("s"))[1:] == ("start", {"a": 1})


async def test_two_plans_for_one_charger_at_once_leave_one_plans_dispatches(store):
    a = [(T0 + 2 * HH, T0 + 3 * HH), (T0 + 4 * HH, T0 + 5 * HH)]
    b = [(T0 + 6 * HH, T0 + 8 * HH)]
    for _ in range(5):
        await asyncio.gather(*(
            store.store_plan("s", "M1", T0, "r", Decimal("1"), {}, {"car": plan})
            for plan in (a, b, a, b)
        ))  # fmt: skip
        planned = [(s, e) for s, e, st in await _smart(store) if st == "planned"]
        assert planned in (a, b)


async def test_kv_writes_made_together_share_a_few_transactions_and_all_commit(store):
    before = store.kv_writes.transactions
    await asyncio.gather(*(store.set_kv(f"meter:s{i}", f"v{i}") for i in range(300)))
    assert store.kv_writes.transactions - before <= 3  # not 300
    got = dict(await store.query("SELECT key, value FROM kv WHERE key LIKE 'meter:%'"))
    assert got == {f"meter:s{i}": f"v{i}" for i in range(300)}
    # The last of two values for one key wins, and both callers return once it is stored.
    await asyncio.gather(store.set_kv("k", "first"), store.set_kv("k", "second"))
    assert await store.get_kv("k") == "second"


async def test_a_failed_kv_batch_fails_each_caller_and_writes_nothing(store):
    got = await asyncio.gather(store.set_kv("a", "1"), store.set_kv("b", object()),
                               return_exceptions=True)  # fmt: skip
    assert all(isinstance(g, Exception) for g in got)  # one transaction: neither is stored
    assert await store.get_kv("a") is None and await store.get_kv("b") is None
    await store.set_kv("a", "2")  # the writer goes on after a failed batch
    assert await store.get_kv("a") == "2"


async def test_plans_stored_together_share_transactions_and_each_gets_its_dispatches(store):
    before = store.plan_writes.transactions
    await asyncio.gather(*(
        store.store_plan(f"s{i}", f"M{i}", T0, "plug-in", Decimal(i), {"i": i},
                         {f"car{i}": [(T0 + i % 5 * HH, T0 + (i % 5 + 1) * HH)]})
        for i in range(120)
    ))  # fmt: skip
    assert store.plan_writes.transactions - before <= 3  # not 120
    for i in (0, 7, 119):
        assert (await store.latest_plan(f"s{i}"))[1:] == ("plug-in", {"i": i})
        assert await _smart(store, f"car{i}") == [
            (T0 + i % 5 * HH, T0 + (i % 5 + 1) * HH, "planned")]  # fmt: skip
    (n,) = (await store.query("SELECT COUNT(*) FROM dispatches WHERE kind = 'smart'"))[0]
    assert n == 120
