"""Daemon benchmark (run by hand): one daemon, many simulated sites, on simulated time.

    .venv/bin/python bench/daemon.py [--sites 10 100 1000] [--hours 1.0] [--speed N ...]

Each site has a battery inverter and an OCPP charger with an EV, every device simulated
in-process on loopback (so the CPU figures include the simulators). The run starts at 15:45 on a
January day: the price feed publishes the next day's prices at 16:00 (every site re-plans) and
every EV plugs in at 16:05 (every site re-plans again, all at once); the feed, polling every
30 minutes, sees the new prices at 16:15. Each site count runs in its
own process so memory figures do not mix.

Measured per run:
- control-cycle time: real seconds each SiteLoop.cycle took (median, p95, max);
- re-plan latency: real seconds from the re-plan request (the price update, the plug-in) to the
  stored plan, over all sites (this includes waiting behind the other sites' solves);
- CPU per site: process CPU seconds per site per simulated hour, and what that means in real
  time (the share of one core a site costs, and sites per core);
- memory per site: resident memory after start-up minus before, per site;
- kept up: the oldest device state seen by a sampler (should stay near the 30 s poll interval).
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
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 1, 15, 15, 45, tzinfo=UTC)  # GMT: local time == UTC
PUBLISH = datetime(2026, 1, 15, 16, 0, tzinfo=UTC)  # the price simulator's day-ahead publish
DEFAULT_SPEED = {10: 60.0, 100: 20.0, 1000: 4.0}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def site_doc(i: int, inverter: str) -> dict[str, Any]:
    return {
        "id": f"s{i:04d}",
        "meter": f"M{i:04d}",
        "tariff": "io-go",
        "account": f"A{i:04d}",
        "reserve_pct": 10,
        "devices": [
            {"id": f"b{i:04d}", "brand": inverter, "simulate": True, "poll_seconds": 30,
             "timeout_s": 5},
            {"id": f"c{i:04d}", "brand": "ocpp", "charge_point_id": f"CP{i:04d}",
             "simulate": True, "poll_seconds": 30, "timeout_s": 5,
             "ev": {"capacity_kwh": 60, "max_charge_kw": 7.4, "efficiency": 0.9,
                    "initial_soc_pct": 30, "plug_in_local": "16:05"},
             "preferences": {"weekday_ready_by": "07:00", "weekend_ready_by": "07:00",
                             "target_soc_pct": 80}},
        ],
    }  # fmt: skip


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def r(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


async def run_one(
    n: int,
    hours: float,
    speed: float,
    inverter: str,
    start: datetime = START,
    processes: int = 0,
) -> dict[str, Any]:
    from core.clock import ScaledClock
    from flexd.config import parse_config
    from flexd.daemon import Daemon
    from flexd.obs import logs
    from flexd.simulation import simulated_backends
    from flexd.storage import Storage

    tmp = Path(tempfile.mkdtemp(prefix="flexd-bench-"))
    doc = {
        "daemon": {
            "database": str(tmp / "flexd.sqlite"),
            "log_format": "json",
            **({"planner_processes": processes} if processes else {}),
        },
        "api": {"enabled": False},
        "prices": {"source": "simulator"},
        "simulation": {"start": start.isoformat(), "speed": speed, "hours": hours},
        "sites": [site_doc(i, inverter) for i in range(n)],
    }
    cfg = parse_config(doc, tmp, env={})
    log_file = (tmp / "flexd.log").open("w")
    logs.configure("json", stream=log_file)
    rss0, cpu0, wall0 = rss_mb(), cpu_s(), time.perf_counter()
    solver_processes = None
    if processes:  # as flexd run starts them: before the clock
        from flexd.control.solve_procs import SolverProcesses

        solver_processes = SolverProcesses(processes)
        solver_processes.start()
    clock = ScaledClock(start, speed)
    storage = await Storage.open(cfg.database)
    until = start + timedelta(hours=hours)
    # (Keyword only when set: the bench also runs against older code, as the reference.)
    extra = {"solver_processes": solver_processes} if solver_processes is not None else {}
    daemon = Daemon(cfg, clock, storage, simulated_backends(cfg, clock), until=until, **extra)
    cycles: list[float] = []
    latency: dict[str, list[float]] = {"start": [], "prices": [], "plug-in": [], "other": []}
    ages: list[float] = []
    not_online = 0
    started: dict[str, float] = {}

    def timed(loop: Any) -> Any:
        inner = loop.cycle

        async def cycle() -> None:
            pending = set(loop.site.replan_reasons)
            await inner()
            cycles.append(loop.state.last_cycle_s)
            lat = loop.state.last_replan_latency_s
            if lat is None:
                return
            if clock.now() < PUBLISH:  # the first fetch and plan at start-up
                key = "start"
            elif "prices" in pending:
                key = "prices"
            elif any("plug" in r for r in pending):
                key = "plug-in"
            else:
                key = "other"
            latency[key].append(lat)

        return cycle

    for loop in daemon.loops.values():
        loop.cycle = timed(loop)  # type: ignore[method-assign]

    async def sampler() -> None:
        nonlocal not_online
        while not daemon.stop.is_set():
            await clock.sleep(60)
            now = clock.now()
            for site in daemon.sites.values():
                for dev in site.devices.values():
                    age = dev.age_s(now)
                    if age is not None:
                        ages.append(age)
                    not_online += dev.health(now).value != "online"

    async def on_started(d: Any) -> None:
        started.update(rss=rss_mb(), cpu=cpu_s(), wall=time.perf_counter(),
                       sim=clock.now().timestamp())  # fmt: skip
        asyncio.get_running_loop().create_task(sampler())

    await daemon.run(on_started=on_started)
    cpu_run = cpu_s() - started["cpu"]
    wall_run = time.perf_counter() - started["wall"]
    sim_h = (clock.now().timestamp() - started["sim"]) / 3600
    solve = daemon.metrics.plan_solve
    solves = sum(solve.counts.values())
    solve_ms = 1000 * sum(solve.values.values()) / solves if solves else None
    await storage.close()
    log_file.close()
    per_site_cpu_h = cpu_run / n / sim_h  # CPU seconds per site per simulated hour
    return {
        "sites": n,
        "speed": speed,
        "planner_processes": processes,
        "sim_hours": round(sim_h, 3),
        "startup_s": round(started["wall"] - wall0, 2),
        "startup_cpu_s": round(started["cpu"] - cpu0, 2),
        "run_wall_s": round(wall_run, 1),
        "run_cpu_s": round(cpu_run, 1),
        "cpu_util": round(cpu_run / wall_run, 2),
        "cpu_s_per_site_per_sim_h": round(per_site_cpu_h, 3),
        "core_share_per_site_real_time_pct": round(100 * per_site_cpu_h / 3600, 4),
        "sites_per_core_real_time": int(3600 / per_site_cpu_h) if per_site_cpu_h else None,
        "rss_mb_before": round(rss0, 1),
        "rss_mb_per_site": round((started["rss"] - rss0) / n, 3),
        "rss_mb_end": round(rss_mb(), 1),
        "cycles": len(cycles),
        "cycle_ms_median": round(1000 * statistics.median(cycles), 2) if cycles else None,
        "cycle_ms_p95": r(1000 * (pct(cycles, 0.95) or 0), 2),
        "cycle_ms_max": round(1000 * max(cycles), 2) if cycles else None,
        "replan_start_s_median": r(pct(latency["start"], 0.5), 3),
        "replans_prices": len(latency["prices"]),
        "replan_prices_s_median": r(pct(latency["prices"], 0.5), 3),
        "replan_prices_s_p95": r(pct(latency["prices"], 0.95), 3),
        "replan_prices_s_max": r(max(latency["prices"], default=None), 3),
        "replans_plug_in": len(latency["plug-in"]),
        "replan_plug_in_s_median": r(pct(latency["plug-in"], 0.5), 3),
        "replan_plug_in_s_p95": r(pct(latency["plug-in"], 0.95), 3),
        "replan_plug_in_s_max": r(max(latency["plug-in"], default=None), 3),
        "replan_other_s_median": r(pct(latency["other"], 0.5), 3),
        "poll_age_s_p99": r(pct(ages, 0.99), 1),
        "poll_age_s_max": r(max(ages, default=None), 1),
        "plans": solves,
        "solve_ms_mean": r(solve_ms, 2),
        "not_online_samples": not_online,
        "samples": len(ages),
    }


ROWS = [
    ("speed (simulated s per real s)", "speed"),
    ("start-up, real s", "startup_s"),
    ("CPU s per site per simulated hour", "cpu_s_per_site_per_sim_h"),
    ("sites per core in real time", "sites_per_core_real_time"),
    ("resident memory per site, MB", "rss_mb_per_site"),
    ("control cycles run", "cycles"),
    ("cycle time median / p95 / max, ms", ("cycle_ms_median", "cycle_ms_p95", "cycle_ms_max")),
    ("plans made / mean solve, ms", ("plans", "solve_ms_mean")),
    ("re-plan after the price update: median / p95 / max, s",
     ("replan_prices_s_median", "replan_prices_s_p95", "replan_prices_s_max")),
    ("re-plan after plug-in (all sites at once): median / p95 / max, s",
     ("replan_plug_in_s_median", "replan_plug_in_s_p95", "replan_plug_in_s_max")),
    ("device state age p99 / max, s (poll every 30 s)", ("poll_age_s_p99", "poll_age_s_max")),
    ("device samples not online", "not_online_samples"),
]  # fmt: skip


def markdown(results: list[dict[str, Any]]) -> str:
    head = "| | " + " | ".join(f"{r['sites']} sites" for r in results) + " |"
    out = [head, "|---" * (len(results) + 1) + "|"]
    for label, key in ROWS:
        keys = key if isinstance(key, tuple) else (key,)
        cells = [" / ".join(str(r.get(k)) for k in keys) for r in results]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sites", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--hours", type=float, default=0.75, help="simulated hours from 15:45")
    ap.add_argument("--speed", type=float, nargs="+", help="simulated/real speed, one per --sites")
    ap.add_argument("--inverter", default="givenergy")
    ap.add_argument("--processes", type=int, default=0,
                    help="[daemon] planner_processes (0: solves in threads)")  # fmt: skip
    ap.add_argument("--start", default=START.isoformat(),
                    help="simulated start (UTC): later than 15:45 skips to the storms sooner; "
                         "after 16:00 the price storm is not measured")  # fmt: skip
    ap.add_argument("--one", action="store_true", help="(internal) run one size in this process")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.one:
        speed = args.speed[0] if args.speed else DEFAULT_SPEED.get(args.sites[0], 30.0)
        start = datetime.fromisoformat(args.start)
        result = asyncio.run(
            run_one(args.sites[0], args.hours, speed, args.inverter, start, args.processes)
        )
        print(json.dumps(result))
        return 0
    speeds = args.speed or [DEFAULT_SPEED.get(n, 30.0) for n in args.sites]
    results = []
    for n, speed in zip(args.sites, speeds, strict=True):
        cmd = [sys.executable, __file__, "--one", "--sites", str(n), "--hours", str(args.hours),
               "--speed", str(speed), "--inverter", args.inverter, "--start", args.start,
               "--processes", str(args.processes)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")  # fmt: skip
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
