"""Leases, epochs and fencing on the real PostgreSQL: claims never overlap, every claim raises
the epoch, and a write or command under a stale epoch is refused with nothing stored."""

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from flexd.fleet.catalogue import import_sites
from flexd.fleet.journal import CommandJournal, NoLeaseLeft
from flexd.fleet.leases import Leases, fleet_view
from flexd.storage import ReadingRow, Storage
from flexd.storage.fence import Fence, StaleEpoch, fenced
from tests.pg import pg_database

AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _site(i: int) -> dict:
    return {"id": f"s{i:02d}", "account": f"a{i}", "meter": f"M{i:02d}", "tariff": "io-go",
            "devices": [{"id": f"s{i:02d}-inv", "brand": "givenergy", "host": "127.0.0.1",
                         "port": 1}]}  # fmt: skip


@pytest.fixture
async def store():
    async with pg_database() as url:
        s = await Storage.open(url)
        try:
            await import_sites(s, [_site(i) for i in range(10)])
            yield s
        finally:
            await s.close()


async def leases(store, *specs: tuple[str, float]) -> list[Leases]:
    out = [Leases(store, name, lease) for name, lease in specs]
    for lease in out:
        await lease.register()
    return out


async def test_concurrent_claims_take_disjoint_sites_and_raise_epochs(store):
    a, b = await leases(store, ("a", 30), ("b", 30))
    got_a, got_b = await asyncio.gather(a.claim(6), b.claim(6))
    sa, sb = {c.site for c in got_a}, {c.site for c in got_b}
    assert not sa & sb
    assert len(sa | sb) == 10
    assert all(c.epoch == 1 for c in got_a + got_b)
    assert await a.claim(5) == []  # nothing unowned or expired is left


async def test_expired_lease_is_taken_over_with_a_higher_epoch(store):
    a, b = await leases(store, ("a", 1), ("b", 30))
    [first] = await a.claim(1)
    assert await b.claim(10) != []  # the other nine
    assert await b.claim(10) == []  # a's lease still runs
    await asyncio.sleep(1.2)
    [taken] = await b.claim(10)
    assert (taken.site, taken.epoch) == (first.site, first.epoch + 1)
    assert await a.renew() is None  # a's lease lapsed: it may no longer count on any site
    await a.rejoin()
    assert await a.renew() == {}  # a beats again, owning nothing
    _, sites = await fleet_view(store)
    assert {s.id: s.owner for s in sites}[first.site] == "b"


async def test_release_keeps_the_epoch_so_the_next_claim_is_higher(store):
    [a] = await leases(store, ("a", 30))
    claims = await a.claim(2)
    assert await a.release({c.site: c.epoch for c in claims}) == 2
    [b] = await leases(store, ("b", 30))
    again = {c.site: c.epoch for c in await b.claim(10)}
    for c in claims:
        assert again[c.site] == c.epoch + 1


async def test_a_stale_epoch_writes_nothing(store):
    a, b = await leases(store, ("a", 1), ("b", 30))
    [claim] = await a.claim(1)
    meter = json.loads(json.dumps(claim.doc))["meter"]
    old = Fence(claim.site, "a", claim.epoch)
    row = ReadingRow(meter, AT, "import", Decimal("0.5"))
    with fenced(old):
        await store.upsert_readings([row], AT)  # the owner's write goes through
    await asyncio.sleep(1.2)
    await b.claim(10)  # b takes it over
    with fenced(old), pytest.raises(StaleEpoch):
        await store.upsert_readings([ReadingRow(meter, AT, "import", Decimal("9.9"))], AT)
    with fenced(old), pytest.raises(StaleEpoch):
        await store.set_kv(f"meter:{claim.site}", "{}")
    [kept] = await store.readings(meter, AT, AT.replace(hour=13))
    assert kept.kwh == Decimal("0.5")
    assert await store.get_kv(f"meter:{claim.site}") is None


async def two_claimed_one_taken_over(store):
    """Two sites claimed by instance a, then one of them claimed by another instance."""
    [a] = await leases(store, ("a", 30))
    lost, kept = await a.claim(2)
    async with store.driver.transaction() as tx:
        await tx.execute("UPDATE fleet_sites SET owner = 'b', epoch = epoch + 1 WHERE id = ?",
                         (lost.site,))  # fmt: skip
    return lost, kept


async def test_kv_writes_batched_together_are_fenced_each_by_its_own_epoch(store):
    # Group commit (flexd.storage.group_commit): a stale site's save and a live site's save
    # made together share one transaction; only the stale one is refused.
    lost, kept = await two_claimed_one_taken_over(store)

    async def save(c):
        with fenced(Fence(c.site, "a", c.epoch)):
            await store.set_kv(f"meter:{c.site}", "saved")

    before = store.kv_writes.transactions
    got = await asyncio.gather(save(lost), save(kept), return_exceptions=True)
    assert isinstance(got[0], StaleEpoch) and got[1] is None
    assert store.kv_writes.transactions == before + 1  # one transaction for both
    assert await store.get_kv(f"meter:{lost.site}") is None
    assert await store.get_kv(f"meter:{kept.site}") == "saved"


async def test_plans_batched_together_are_fenced_each_by_its_own_epoch(store):
    lost, kept = await two_claimed_one_taken_over(store)

    async def plan(c):
        with fenced(Fence(c.site, "a", c.epoch)):
            await store.store_plan(c.site, f"M-{c.site}", AT, "plug-in", Decimal(1), {},
                                   {f"car-{c.site}": [(AT, AT.replace(hour=13))]})  # fmt: skip

    before = store.plan_writes.transactions
    got = await asyncio.gather(plan(lost), plan(kept), return_exceptions=True)
    assert isinstance(got[0], StaleEpoch) and got[1] is None
    assert store.plan_writes.transactions == before + 1  # one transaction for both
    assert await store.latest_plan(lost.site) is None
    assert await store.latest_plan(kept.site) is not None
    assert await store.dispatches(device_id=f"car-{lost.site}") == []
    assert len(await store.dispatches(device_id=f"car-{kept.site}")) == 1


async def test_a_claim_waits_out_a_write_in_flight(store):
    """FOR SHARE (the write) against FOR UPDATE SKIP LOCKED (the claim): an expired site
    whose old owner is mid-write is skipped, not taken from under the write."""
    a, b = await leases(store, ("a", 1), ("b", 30))
    [claim] = await a.claim(1)
    await asyncio.sleep(1.2)
    with fenced(Fence(claim.site, "a", claim.epoch)):
        async with store.driver.transaction():  # the fence check holds the row FOR SHARE
            taken = {c.site for c in await b.claim(10)}
            assert claim.site not in taken
    assert {c.site for c in await b.claim(10)} == {claim.site}


async def test_commands_are_journalled_under_the_epoch_and_refused_when_stale(store):
    a, b = await leases(store, ("a", 1), ("b", 30))
    [claim] = await a.claim(1)
    left = {claim.site: 8.0}
    journal = CommandJournal(store, lambda site: left.get(site, 0.0))
    fence = Fence(claim.site, "a", claim.epoch)
    with fenced(fence):
        entry, budget = await journal.sent("dev", "SetBatteryMode")
        await journal.done(entry, "honoured")
    assert 7.0 <= budget < 8.0  # the command may not outlast the lease
    rows = await store.query(
        "SELECT site, epoch, owner, done_at IS NOT NULL, "
        "extract(epoch from deadline - sent_at) FROM fleet_commands")
    assert rows[0][:4] == (claim.site, claim.epoch, "a", True)
    assert abs(float(rows[0][4]) - budget) < 0.01
    left[claim.site] = 0.9  # too little lease left by the instance's own clock: skipped
    with fenced(fence), pytest.raises(NoLeaseLeft):
        await journal.sent("dev", "SetBatteryMode")
    left[claim.site] = 8.0
    await asyncio.sleep(1.2)
    await b.claim(10)
    with fenced(fence), pytest.raises(StaleEpoch):  # and by the database's epoch
        await journal.sent("dev", "SetBatteryMode")
    assert len(await store.query("SELECT id FROM fleet_commands")) == 1


async def test_one_heartbeat_renews_every_site_of_an_instance(store):
    """A renewal writes the instance's row only: the sites' rows are not touched."""
    a, b = await leases(store, ("a", 1), ("b", 30))
    got = await a.claim(10)
    before = await store.query("SELECT xmin::text FROM fleet_sites ORDER BY id")
    for _ in range(3):
        await asyncio.sleep(0.4)
        assert set(await a.renew()) == {c.site for c in got}
    assert await store.query("SELECT xmin::text FROM fleet_sites ORDER BY id") == before
    assert await b.claim(10) == []  # a's beats kept every lease alive past its 1 s
    await a.stopped()  # a clean stop frees them at once
    assert len(await b.claim(10)) == 10


async def test_a_restart_with_the_same_id_frees_what_the_dead_process_held(store):
    """A process restarted in place (same host-pid or a fixed instance_id) holds none of the
    sites its predecessor did: they must not stay owned by a live heartbeat and run nowhere."""
    [old] = await leases(store, ("same", 3))
    held = {c.site: c.epoch for c in await old.claim(4)}
    assert len(held) == 4
    again = Leases(store, "same", 3)
    await again.register()  # waits out the old heartbeat (3 s), then frees the sites
    rows = await store.query("SELECT COUNT(*) FROM fleet_sites WHERE owner = 'same'")
    assert rows == [(0,)]
    taken = {c.site: c.epoch for c in await again.claim(10)}
    assert all(taken[s] == e + 1 for s, e in held.items())  # claimed anew, epochs moved on


async def test_a_live_duplicate_id_is_refused(store):
    [first] = await leases(store, ("dup", 3))

    async def beating() -> None:
        while True:
            await first.renew()
            await asyncio.sleep(0.5)

    task = asyncio.create_task(beating())
    try:
        with pytest.raises(RuntimeError, match="in use by a running instance"):
            await Leases(store, "dup", 3).register()
    finally:
        task.cancel()


async def test_an_instance_whose_own_lease_lapsed_claims_nothing(store):
    a, b = await leases(store, ("a", 1), ("b", 30))
    await asyncio.sleep(1.2)  # a paused past its lease: its claims would outlive it
    assert await a.claim(5) == []
    assert len(await b.claim(5)) == 5


async def test_a_claim_racing_a_renewal_waits_for_it_and_leaves_its_sites(store):
    """A renewal in flight when a's lease runs out: the claim locks a's row, waits for the
    renewal and re-reads it, so a keeps its sites (never both think they own them)."""
    a, b = await leases(store, ("a", 2), ("b", 30))
    mine = {c.site for c in await a.claim(3)}
    await asyncio.sleep(1.5)
    async with store.driver.transaction() as tx:  # a's renewal, not yet committed
        await tx.execute("UPDATE fleet_instances SET heartbeat_at = clock_timestamp() "
                         "WHERE id = 'a'")  # fmt: skip
        await asyncio.sleep(0.8)  # the old heartbeat has now lapsed
        claim = asyncio.create_task(b.claim(10))
        await asyncio.sleep(0.3)
        assert not claim.done()  # the claim waits on a's row
    taken = {c.site for c in await claim}
    assert len(taken) == 7 and not taken & mine
