"""Bills in the storage contract, on SQLite and PostgreSQL: a bill and its billed lines commit
together or not at all, and later bills read what earlier ones charged."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from flexd.storage import RatedRow
from flexd.storage.bills import BillInputs, BillStore

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def rated(cost):
    return RatedRow("M1", T0, "import", 0, "2026-03-01", 1, Decimal("0.50"), "peak",
                    Decimal("24.50"), Decimal(cost), T0, "t")  # fmt: skip


def compose(seen):
    def run(inputs: BillInputs):
        seen.append(inputs)
        return {"from": "2026-03-01", "to": "2026-03-02", "n": len(inputs.current)}

    return run


async def test_a_failed_bill_leaves_nothing(store):
    bills = BillStore(store.driver)
    await store.add_rated([rated("1.00")])

    def boom(inputs):
        raise ValueError("the pure part refused it")

    with pytest.raises(ValueError):
        await bills.create("M1", T0, T1, date(2026, 3, 2), T1, boom)
    assert await bills.list("M1") == []
    assert await store.query("SELECT COUNT(*) FROM billed_slots") == [(0,)]


async def test_billed_lines_feed_the_next_bill(store):
    bills = BillStore(store.driver)
    await store.add_rated([rated("1.00")])
    seen: list[BillInputs] = []
    first, doc = await bills.create("M1", T0, T1, date(2026, 3, 2), T1, compose(seen))
    assert seen[0].billed is None and [r.cost_p for r in seen[0].current] == [Decimal("1.00")]
    assert await bills.get("M1", first) == doc and await bills.get("M2", first) is None
    await store.add_rated([rated("2.00")])
    second, _ = await bills.create("M1", T0, T1, date(2026, 3, 2), T1, compose(seen))
    assert second > first
    assert [r.cost_p for r in seen[1].billed or []] == [Decimal("1.00")]
    assert [r.cost_p for r in seen[1].current] == [Decimal("2.00")]
    assert [b["id"] for b in await bills.list("M1")] == [first, second]
