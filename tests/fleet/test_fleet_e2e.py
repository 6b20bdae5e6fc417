"""The fleet end to end: 3 ``flexd run`` instances over one PostgreSQL, 30 sites whose devices
run in a separate simulator process (GivEnergy over Modbus TCP, OpenEVSE over the real broker),
on one simulated timeline at 100x.

- Every site gets exactly one owner, and the instances share them.
- A bump posted to an instance that does not own the charger's site reaches the charger.
- After kill -9 of an instance, all its sites have a new owner within lease_seconds plus one
  control cycle, and the new owners act on them.
- No two owners ever command one device in overlapping windows (the command journal, stamped
  by the database's clock), and epochs never go backwards on a device.
- No half-hour is lost (every meter's readings are contiguous across the takeover) or rated
  twice (no slot holds two identical versions).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import timedelta

import psycopg
import pytest

from core.timegrid import half_hour_start
from flexd.storage import parse_ts, ts
from tests.fleet.harness import FleetRig, wait_for
from tests.pg import pg_database

N_SITES = 30
INSTANCES = ("i1", "i2", "i3")


def q(url: str, sql: str, args: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return list(conn.execute(sql, args).fetchall())


def owners(url: str) -> dict[str, str | None]:
    rows = q(url, "SELECT id, CASE WHEN lease_until > now() THEN owner END FROM fleet_leases")
    return {r[0]: r[1] for r in rows}


@pytest.fixture
async def rig(tmp_path, mosquitto):
    async with pg_database() as url:
        r = FleetRig(tmp_path, url, (mosquitto.host, mosquitto.port), sites=N_SITES)
        try:
            yield r
        finally:
            r.stop_all()


async def test_three_instances_thirty_sites_kill_one(rig: FleetRig):
    url = rig.url
    assert rig.import_sites(rig.start_simulator()) == {"added": N_SITES, "updated": 0,
                                                       "unchanged": 0}  # fmt: skip
    for name in INSTANCES:
        rig.start_instance(name)

    def shared() -> bool:
        own = owners(url)
        counts = [list(own.values()).count(n) for n in INSTANCES]
        return all(own.values()) and max(counts) <= N_SITES // len(INSTANCES) + 1

    await wait_for("every site owned, shared by the three instances", shared, 120)
    await asyncio.sleep(rig.lease_s)  # let the last hand-overs settle
    await wait_for("every site owned, shared by the three instances", shared, 30)

    # A bump posted to an instance that does not own the charger's site.
    own = owners(url)
    owners_at_start = dict(own)
    site = sorted(s for s, o in own.items() if o == "i1")[0]
    evse = f"{site}-evse"
    await wait_for("the owner polled the charger", lambda: rig.api(
        "i2", "GET", f"/api/v1/devices/{evse}")[1].get("state"), 30)  # fmt: skip
    posted = time.time()
    status, body = rig.api("i2", "POST", f"/api/v1/devices/{evse}/bump-charge",
                           {"duration_minutes": 60})  # fmt: skip
    assert status == 202, body
    assert body["type"] == "BOOST"
    sent = await wait_for("ChargeNow honoured at the charger", lambda: q(
        url, "SELECT owner, extract(epoch from sent_at), outcome FROM fleet_commands "
        "WHERE device_id = %s AND command = 'ChargeNow' AND done_at IS NOT NULL", (evse,)),
        30)  # fmt: skip
    assert sent[0][0] == "i1" and sent[0][2] == "honoured", sent
    assert float(sent[0][1]) >= posted - 0.5  # after the request, by the owner
    view = await wait_for("the car charging, seen through a non-owner", lambda: (
        v := rig.api("i3", "GET", f"/api/v1/devices/{evse}")[1])["state"]["charging_w"] > 0
        and v, 30)  # fmt: skip
    assert view["site"] == site

    # The owner's errors come back typed through a non-owner: 409 (already boosting), 422.
    status, body = rig.api("i3", "POST", f"/api/v1/devices/{evse}/bump-charge", {})
    assert (status, body["error"]) == (409, "already-boosting"), body
    status, body = rig.api("i3", "PUT", f"/api/v1/devices/{evse}/preferences",
                           {"target_soc_pct": 150})  # fmt: skip
    assert (status, body["field"]) == (422, "target_soc_pct"), body
    # A preference change through a non-owner reaches the owner, which re-plans on it.
    status, body = rig.api("i2", "PUT", f"/api/v1/devices/{evse}/preferences",
                           {"target_soc_pct": 90})  # fmt: skip
    assert status == 200 and body["target_soc_pct"] == 90, body
    assert rig.api("i3", "GET", f"/api/v1/devices/{evse}/preferences")[1]["target_soc_pct"] == 90
    await wait_for("the owner re-planned on the preferences", lambda: any(
        d.get("site") == site and "preferences" in d.get("replan", "")
        for d in rig.log_lines("i1")), 30)  # fmt: skip
    # Readings posted to a non-owner are stored once and rated (the owner is told to rate them).
    meter = q(url, "SELECT meter FROM fleet_sites WHERE id = %s", (site,))[0][0]
    status, body = rig.api("i3", "POST", f"/api/v1/meters/{meter}/readings", {"readings": [
        {"start": "2026-01-14T12:00:00Z", "kwh": "0.42", "register": "import"}]})  # fmt: skip
    assert status == 200, body
    await wait_for("the posted reading rated", lambda: q(
        url, "SELECT kwh, reason FROM rated_slots WHERE meter = %s AND start = "
        "'2026-01-14T12:00:00Z'", (meter,)), 30)  # fmt: skip
    metrics = rig.metrics("i1")
    assert "flexd_fleet_sites_owned" in metrics and f'site="{site}"' in metrics
    assert all(f'flexd_fleet_instance_sites{{instance="{n}"}}' in metrics for n in INSTANCES)

    status, fleet = rig.api("i3", "GET", "/api/v1/fleet")
    assert status == 200
    assert {i["id"] for i in fleet["instances"]} == set(INSTANCES)
    assert sum(i["sites_owned"] for i in fleet["instances"]) == N_SITES
    assert {s["id"] for s in fleet["sites"]} == set(own)

    # kill -9 the instance with the most sites, once a half-hour has closed under it.
    first_close = half_hour_start(rig.start) + timedelta(minutes=30, seconds=rig.cycle_s)
    await asyncio.sleep(max(0.0, (first_close - rig.sim_now()).total_seconds() / rig.speed))
    counts = defaultdict(int)
    for o in owners(url).values():
        counts[o] += 1
    victim = max(INSTANCES, key=lambda n: counts[n])
    theirs = {s for s, o in owners(url).items() if o == victim}
    killed_at = time.monotonic()
    killed_sim = rig.sim_now()
    rig.kill(victim)
    await wait_for("every site owned by a live instance", lambda: all(
        o not in (None, victim) for o in owners(url).values()), 60, every=0.1)  # fmt: skip
    takeover_s = time.monotonic() - killed_at
    limit = rig.lease_s + rig.real_s(rig.cycle_s)
    assert takeover_s <= limit, f"takeover took {takeover_s:.1f} s (limit {limit:.1f} s)"

    # Run on past two more half-hour boundaries, then stop the survivors cleanly. A half-hour
    # closes once every device has reported past its end: a poll and a cycle after it.
    end_sim = half_hour_start(killed_sim) + timedelta(minutes=60,
                                                      seconds=2 * rig.cycle_s + rig.poll_s)
    await asyncio.sleep(max(0.0, (end_sim - rig.sim_now()).total_seconds() / rig.speed))
    codes = rig.stop_all()
    assert all(codes[n] == 0 for n in INSTANCES if n != victim), codes

    # Every site ran after the takeover (none left owned but run nowhere): each re-planned at a
    # half-hour after the kill.
    after = ts(half_hour_start(killed_sim) + timedelta(minutes=30))
    planned = {r[0] for r in q(url, "SELECT DISTINCT site FROM plans WHERE created_at >= %s",
                               (after,))}  # fmt: skip
    assert planned == set(owners_at_start), sorted(set(owners_at_start) - planned)

    # The new owners acted on the victim's sites.
    acted = q(url, "SELECT DISTINCT site FROM fleet_commands WHERE owner <> %s AND epoch > 1",
              (victim,))  # fmt: skip
    assert theirs <= {r[0] for r in acted}

    # One owner at a time on every device; epochs never go backwards.
    overlaps = q(url, """
        SELECT a.device_id, a.owner, b.owner FROM fleet_commands a JOIN fleet_commands b
          ON a.device_id = b.device_id AND a.owner <> b.owner AND a.id < b.id
         WHERE a.sent_at < COALESCE(b.done_at, b.deadline)
           AND b.sent_at < COALESCE(a.done_at, a.deadline)""")
    assert overlaps == []
    backwards = q(url, """
        SELECT a.device_id FROM fleet_commands a JOIN fleet_commands b
          ON a.device_id = b.device_id AND a.sent_at < b.sent_at AND a.epoch > b.epoch""")
    assert backwards == []

    # No half-hour lost across the takeover, none rated twice.
    kill_slot = half_hour_start(killed_sim)
    for s in theirs:
        meter = q(url, "SELECT meter FROM fleet_sites WHERE id = %s", (s,))[0][0]
        starts = sorted(r[0] for r in q(url, "SELECT start FROM readings WHERE meter = %s AND "
                                        "register = 'import' AND start >= %s",
                                        (meter, ts(half_hour_start(rig.start)))))  # fmt: skip
        assert starts, f"{s}: no readings"
        first, last = parse_ts(starts[0]), parse_ts(starts[-1])
        assert first <= kill_slot - timedelta(minutes=30) and last >= kill_slot + timedelta(
            minutes=30), (s, starts)  # fmt: skip
        assert len(starts) == (last - first) // timedelta(minutes=30) + 1, (s, starts)
        rated = {r[0] for r in q(url, "SELECT DISTINCT start FROM rated_slots WHERE meter = %s "
                                 "AND register = 'import'", (meter,))}  # fmt: skip
        assert set(starts) <= rated, (s, sorted(set(starts) - rated))
    twice = q(url, """
        SELECT meter, start, register FROM rated_slots
         GROUP BY meter, start, register, kwh, band, unit_rate_p, cost_p HAVING COUNT(*) > 1""")
    assert twice == []
