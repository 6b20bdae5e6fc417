"""Fleet benchmark (run by hand): N ``flexd run`` instances over one PostgreSQL, the devices of
every site in a separate simulator process, all on this machine's cores.

    .venv/bin/python bench/fleet.py [--instances 3] [--sites 900] [--speed 10] [--bumps 40]
        [--broker 127.0.0.1:1883] [--kills 2]

Measured:
- takeover after kill -9: for each of the victim's sites, real seconds from the kill until a
  live instance holds its lease (p50, max), against the lease (the bound it cannot beat);
- PostgreSQL load per site per simulated hour in steady state (after the claims settle): commits,
  rows written (inserted + updated) and rows read, from pg_stat_database over the window, plus
  the fleet's own share (lease renewals are per instance, not per site);
- command latency from any instance to the device: a bump posted to an instance that does not
  own the charger's site, until the charger confirmed ChargeNow (the journal's done_at), against
  the same measured for bumps posted to the owner (the reference, in the same run);
- CPU seconds per site per simulated hour of each instance and of the simulator.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from typing import Any

import psycopg

from tests.fleet.harness import FleetRig, wait_for

ADMIN_URL = os.environ.get("FLEXD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def q(url: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, args)
        return list(cur.fetchall()) if cur.description is not None else []


def owners(url: str) -> dict[str, str | None]:
    rows = q(url, "SELECT id, CASE WHEN lease_until > now() THEN owner END FROM fleet_leases")
    return {r[0]: r[1] for r in rows}


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def pg_stats(url: str, db: str) -> dict[str, int]:
    row = q(url, "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, tup_fetched, "
            "tup_returned FROM pg_stat_database WHERE datname = %s", (db,))[0]  # fmt: skip
    q(url, "SELECT pg_stat_clear_snapshot()")
    keys = ("commits", "inserted", "updated", "deleted", "fetched", "returned")
    return dict(zip(keys, (int(v) for v in row), strict=True))


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def bump_latency(rig: FleetRig, url: str, sites: list[str], to_owner: bool) -> list[float]:
    """Seconds from posting a bump until the charger confirmed ChargeNow."""
    out = []
    for site in sites:
        own = owners(url)
        owner = own[site]
        target = owner if to_owner else next(n for n in rig.procs if n != owner and
                                             rig.procs[n].poll() is None)  # fmt: skip
        evse = f"{site}-evse"
        posted = time.time()
        status, body = await asyncio.to_thread(
            rig.api, str(target), "POST", f"/api/v1/devices/{evse}/bump-charge",
            {"duration_minutes": 30})  # fmt: skip
        if status != 202:
            print(f"  bump {evse} via {target}: {status} {body}", file=sys.stderr)
            continue
        got = await wait_for(f"ChargeNow at {evse}", lambda e=evse: q(
            url, "SELECT extract(epoch from done_at) FROM fleet_commands WHERE device_id = %s "
            "AND command = 'ChargeNow' AND done_at IS NOT NULL", (e,)), 60, every=0.02)  # fmt: skip
        out.append(float(got[0][0]) - posted)
    return out


async def measure(rig: FleetRig, url: str, db: str, args: argparse.Namespace,
                  names: list[str], result: dict[str, Any], settled: Any) -> None:
    """Steady state, command latency, takeovers (the default run)."""
    # Steady state: PostgreSQL and CPU per site per simulated hour.
    pids = {n: rig.procs[n].pid for n in names}
    assert rig.sim is not None
    cpu0 = {n: cpu_s(p) for n, p in pids.items()} | {"sim": cpu_s(rig.sim.pid)}
    st0, sim0, w0 = pg_stats(url, db), rig.sim_now(), time.monotonic()
    cmd0 = q(url, "SELECT COUNT(*) FROM fleet_commands")[0][0]
    await asyncio.sleep(args.steady_s)
    st1, sim1, w1 = pg_stats(url, db), rig.sim_now(), time.monotonic()
    cmd1 = q(url, "SELECT COUNT(*) FROM fleet_commands")[0][0]
    cpu1 = {n: cpu_s(p) for n, p in pids.items()} | {"sim": cpu_s(rig.sim.pid)}
    site_h = args.sites * (sim1 - sim0).total_seconds() / 3600
    real_s = w1 - w0
    d = {k: st1[k] - st0[k] for k in st0}
    # Lease renewals and heartbeats: one transaction per instance per lease/3 real s.
    lease_tx = args.instances * real_s / (args.lease / 3)
    result["steady"] = {
        "real_s": round(real_s, 1), "simulated_h": round(site_h / args.sites, 3),
        "per_site_hour": {
            "commits": round(d["commits"] / site_h, 1),
            "rows_written": round((d["inserted"] + d["updated"]) / site_h, 1),
            "rows_inserted": round(d["inserted"] / site_h, 1),
            "rows_updated": round(d["updated"] / site_h, 1),
            "rows_read": round((d["fetched"]) / site_h, 1),
            "commands_journalled": round((cmd1 - cmd0) / site_h, 2),
        },
        "lease_commits_per_instance_per_s": round(1 / (args.lease / 3), 3),
        "lease_commits_share": round(lease_tx / max(1, d["commits"]), 4),
        # Each instance's CPU over the sites it holds (1/instances of them).
        "cpu_s_per_site_hour": {
            n: round((cpu1[n] - cpu0[n]) / site_h * (1 if n == "sim" else args.instances),
                     3)
            for n in cpu0
        },
        "rss_mb": {n: rss_mb(p) for n, p in pids.items()} | {"sim": rss_mb(rig.sim.pid)},
        "cpu_share_of_all_cores": round(
            sum(cpu1[n] - cpu0[n] for n in cpu0) / real_s / (os.cpu_count() or 2), 3),
    }
    print(json.dumps(result["steady"], indent=1))

    # Command latency: non-owner against owner (the reference), on fresh chargers.
    pool = sorted(owners(url))
    random.Random(7).shuffle(pool)
    # Alternate the two kinds, so neither meets a busier moment (a half-hour's
    # re-plans) more than the other.
    direct, relayed = [], []
    for k in range(args.bumps):
        direct += await bump_latency(rig, url, [pool[2 * k]], to_owner=True)
        relayed += await bump_latency(rig, url, [pool[2 * k + 1]], to_owner=False)
    result["command_latency_s"] = {
        "owner": {"n": len(direct), "p50": round(statistics.median(direct), 3),
                  "p95": round(pct(direct, 95), 3), "max": round(max(direct), 3)},
        "non_owner": {"n": len(relayed), "p50": round(statistics.median(relayed), 3),
                      "p95": round(pct(relayed, 95), 3), "max": round(max(relayed), 3)},
        "ratio_p50": round(statistics.median(relayed) / statistics.median(direct), 2),
    }  # fmt: skip
    print(json.dumps(result["command_latency_s"], indent=1))

    # Takeover after kill -9, then the victim restarts and the fleet evens out again.
    takeovers: list[float] = []
    result["epochs_before_kills"] = {
        "max": q(url, "SELECT MAX(epoch) FROM fleet_sites")[0][0],
        "sites_moved_more_than_once": q(
            url, "SELECT COUNT(*) FROM fleet_sites WHERE epoch > 2")[0][0],
    }  # fmt: skip
    for k in range(args.kills):
        own = owners(url)
        victim = max(names, key=lambda n: list(own.values()).count(n))
        theirs = {s for s, o in own.items() if o == victim}
        killed = time.monotonic()
        rig.kill(victim)
        rig.procs[victim].wait()
        seen: dict[str, float] = {}
        while len(seen) < len(theirs):
            now = owners(url)
            t = time.monotonic() - killed
            for s in theirs:
                if s not in seen and now[s] not in (None, victim):
                    seen[s] = t
            if t > 600:
                raise SystemExit("takeover did not finish in 600 s")
            await asyncio.sleep(0.05)
        takeovers += list(seen.values())
        print(f"kill {k + 1}: {victim} had {len(theirs)} sites; all taken over in "
              f"{max(seen.values()):.1f} s")  # fmt: skip
        rig.start_instance(victim)
        await wait_for("the fleet evens out", settled, 600, every=1.0)
        await asyncio.sleep(2 * args.lease)
    result["takeover_s"] = {
        "n": len(takeovers), "p50": round(statistics.median(takeovers), 2),
        "max": round(max(takeovers), 2),
        "ratio_p50_to_lease": round(statistics.median(takeovers) / args.lease, 2),
    }  # fmt: skip
    print(json.dumps(result["takeover_s"], indent=1))
    overlaps = q(url, """
        SELECT COUNT(*) FROM fleet_commands a JOIN fleet_commands b
          ON a.device_id = b.device_id AND a.owner <> b.owner AND a.id < b.id
         WHERE a.sent_at < COALESCE(b.done_at, b.deadline)
           AND b.sent_at < COALESCE(a.done_at, a.deadline)""")[0][0]
    result["overlapping_owner_windows"] = int(overlaps)


async def storm(rig: FleetRig, names: list[str], sites: int) -> dict[str, Any]:
    """Every car plugs in at 23:50 (simulated): real seconds from each site's plug-in re-plan
    request to its stored plan (the ``replan_s`` of the owner's cycle log line)."""
    plug = rig.start.replace(hour=23, minute=50)
    wait_s = (plug - rig.sim_now()).total_seconds() / rig.speed
    await asyncio.sleep(max(0.0, wait_s))
    began = time.monotonic()

    def planned() -> dict[str, float]:
        got: dict[str, float] = {}
        for n in names:
            for d in rig.log_lines(n):
                if d.get("event") == "cycle" and "plug-in" in d.get("replan", ""):
                    got[d["site"]] = float(d.get("replan_s", 0.0))
        return got

    def all_planned() -> dict[str, float] | None:
        got = planned()
        return got if len(got) >= sites else None

    got = await wait_for("every car planned", all_planned, 900, every=2.0)
    lat = list(got.values())
    return {"sites": sites, "instances": len(names),
            "replan_after_plug_in_s": {"median": round(statistics.median(lat), 2),
                                       "p95": round(pct(lat, 95), 2), "max": round(max(lat), 2)},
            "all_planned_within_real_s": round(time.monotonic() - began, 1)}  # fmt: skip


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--sites", type=int, default=900)
    ap.add_argument("--speed", type=float, default=10.0)
    ap.add_argument("--lease", type=float, default=10.0)
    ap.add_argument("--steady-s", type=float, default=120.0, help="real seconds of steady state")
    ap.add_argument("--bumps", type=int, default=40, help="per kind (owner / non-owner)")
    ap.add_argument("--kills", type=int, default=2)
    ap.add_argument("--broker", default="127.0.0.1:1883")
    ap.add_argument("--out", type=Path, default=Path("bench/results/fleet.json"))
    ap.add_argument("--storm", action="store_true", help="only the plug-in storm: every car "
                    "plugs in at once, at 23:50 simulated (issue 15's goal)")
    args = ap.parse_args()
    host, _, port = args.broker.rpartition(":")
    db = f"flexd_bench_{uuid.uuid4().hex[:8]}"
    q(ADMIN_URL, f'CREATE DATABASE "{db}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{db}"
    names = [f"i{k + 1}" for k in range(args.instances)]
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "instances": args.instances, "sites": args.sites, "speed": args.speed,
        "lease_s": args.lease,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        rig = FleetRig(Path(tmp), url, (host, int(port)), sites=args.sites, speed=args.speed,
                       lease_s=args.lease, anchor=time.time() + 10,
                       plug_in="23:50" if args.storm else None)  # fmt: skip
        try:
            t0 = time.monotonic()
            print(rig.import_sites(rig.start_simulator()), f"({time.monotonic() - t0:.1f} s)")
            for n in names:
                rig.start_instance(n)
            share = -(-args.sites // args.instances)

            def settled() -> bool:
                own = owners(url)
                counts = [list(own.values()).count(n) for n in names]
                return all(own.values()) and max(counts) <= share + 1

            await wait_for("every site owned and shared", settled, 600, every=1.0)
            result["all_owned_after_s"] = round(time.monotonic() - t0, 1)
            print(f"all {args.sites} sites owned after {result['all_owned_after_s']} s")
            await asyncio.sleep(2 * args.lease)

            if args.storm:
                result["storm"] = await storm(rig, names, args.sites)
                print(json.dumps(result["storm"], indent=1))
            else:
                await measure(rig, url, db, args, names, result, settled)
        finally:
            rig.stop_all()
            q(ADMIN_URL, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
