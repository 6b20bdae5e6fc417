"""Storage benchmark (run by hand), on SQLite and on PostgreSQL.

    .venv/bin/python bench/storage.py [--backends sqlite,postgresql] [--clients 20] [--batches 50]

1. Readings ingest through the real API: ``POST /api/v1/meters/{meter}/readings`` from
   ``--clients`` concurrent clients (one loopback aiohttp session each), batches of 48 readings,
   each client its own meter: rows/s, p50/p99 latency, errors. The reference, measured in the
   same run on the same database, is the store's own ``upsert_readings`` called directly with
   the same batches at the same concurrency (no HTTP, no JSON, no validation).
2. One meter's year of rated slots (17,520 half-hours, one version each) read back through
   ``latest_rated`` and through ``iter_rated`` (all versions, paged).
3. Rating and storing 1,000 meters' days: the daemon's Rater on stored readings (48 per meter).

PostgreSQL: a fresh database on 127.0.0.1:5432 (FLEXD_TEST_PG), dropped afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing as mp
import os
import platform
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import aiohttp

import rating
from core.clock import ManualClock
from flexd.api.app import bound_port, start_api
from flexd.config import hash_token, parse_config
from flexd.control.runtime import build_sites
from flexd.energy.rater import Rater
from flexd.obs.metrics import Metrics
from flexd.service import Service
from flexd.storage import RatedRow, ReadingRow, Storage
from tests.pg import pg_database

T0 = datetime(2025, 1, 1, tzinfo=UTC)
HH = timedelta(minutes=30)
TOKEN = "bench-billing"


def batch_json(meter_i: int, b: int) -> dict:
    start = T0 + timedelta(days=b)
    return {"readings": [{"start": (start + i * HH).isoformat(), "kwh": f"0.{(i * 7 + b) % 90 + 10}"}
                         for i in range(48)]}  # fmt: skip


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def ingest_api(target, tmp: Path, clients: int, batches: int) -> dict:
    meters = [f"API{i}" for i in range(clients)]
    doc = {
        "daemon": {"database": str(target)},
        "api": {"port": 0, "tokens": [{"name": "b", "role": "billing", "sha256": hash_token(TOKEN)}]},
        "sites": [{"id": f"s{i}", "meter": m, "tariff": "io-go"} for i, m in enumerate(meters)],
    }  # fmt: skip
    cfg = parse_config(doc, tmp, env={})
    storage = await Storage.open(cfg.database)
    sites = build_sites(cfg.sites)
    clock = ManualClock(T0 + timedelta(days=400))
    tariffs = {s.meter: rating.load_tariff(s.tariff) for s in cfg.sites}
    rater = Rater(storage, clock, Metrics(), tariffs)
    service = Service(cfg, storage, clock, sites, rater=rater)
    runner = await start_api(service, cfg.api)
    url = f"http://127.0.0.1:{bound_port(runner)}"
    # The clients run in another process (the other core), as a billing system would: the
    # server's event loop then does only the server's work.
    loop = asyncio.get_running_loop()
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        await loop.run_in_executor(pool, load, url, meters[:1], 1)  # warm the child up
        t = time.perf_counter()
        lat, errors = await loop.run_in_executor(pool, load, url, meters, batches)
        wall = time.perf_counter() - t
    rows = await storage.query("SELECT COUNT(*) FROM readings")
    await runner.cleanup()

    # Reference: the store alone, same batches, same concurrency, fresh meters.
    ref_lat: list[float] = []

    async def direct(i: int) -> None:
        for b in range(batches):
            start = T0 + timedelta(days=b)
            batch = [ReadingRow(f"REF{i}", start + k * HH, "import", Decimal("0.5")) for k in range(48)]
            t = time.perf_counter()
            await storage.upsert_readings(batch, T0)
            ref_lat.append(time.perf_counter() - t)

    t = time.perf_counter()
    await asyncio.gather(*(direct(i) for i in range(clients)))
    ref_wall = time.perf_counter() - t
    await storage.close()
    n = clients * batches * 48
    return {
        "rows": n, "stored": rows[0][0], "errors": errors,
        "api_rows_per_s": round(n / wall), "api_p50_ms": round(pct(lat, 0.5) * 1000, 1),
        "api_p99_ms": round(pct(lat, 0.99) * 1000, 1),
        "store_rows_per_s": round(n / ref_wall), "store_p50_ms": round(pct(ref_lat, 0.5) * 1000, 1),
        "api_over_store": round((n / wall) / (n / ref_wall), 2),
    }  # fmt: skip


def load(url: str, meters: list[str], batches: int) -> tuple[list[float], int]:
    """Child process: one client per meter, ``batches`` POSTs each, all at once."""

    async def run() -> tuple[list[float], int]:
        lat: list[float] = []
        errors = 0

        async def client(i: int) -> None:
            nonlocal errors
            async with aiohttp.ClientSession(url) as http:
                for b in range(batches):
                    t = time.perf_counter()
                    r = await http.post(f"/api/v1/meters/{meters[i]}/readings",
                                        json=batch_json(i, b),
                                        headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
                    await r.read()
                    lat.append(time.perf_counter() - t)
                    errors += r.status != 200

        await asyncio.gather(*(client(i) for i in range(len(meters))))
        return lat, errors

    return asyncio.run(run())


async def query_year(target) -> dict:
    storage = await Storage.open(target)
    rows = [RatedRow("YEAR", T0 + i * HH, "import", 0, "2025-01-01", 1, Decimal("0.50"), "peak",
                     Decimal("24.5"), Decimal("12.25"), T0, "bench") for i in range(17520)]  # fmt: skip
    t = time.perf_counter()
    await storage.add_rated(rows)
    store_s = time.perf_counter() - t
    t = time.perf_counter()
    latest = await storage.latest_rated("YEAR", T0, T0 + timedelta(days=366))
    latest_s = time.perf_counter() - t
    t = time.perf_counter()
    every = [r async for r in storage.iter_rated("YEAR", T0, T0 + timedelta(days=366), True)]
    iter_s = time.perf_counter() - t
    await storage.close()
    assert len(latest) == len(every) == 17520
    return {"store_year_s": round(store_s, 3), "latest_rated_year_s": round(latest_s, 3),
            "iter_rated_year_s": round(iter_s, 3)}  # fmt: skip


async def rate_days(target, meters: int) -> dict:
    storage = await Storage.open(target)
    names = [f"R{i}" for i in range(meters)]
    for m in names:
        await storage.upsert_readings(
            [ReadingRow(m, T0 + i * HH, "import", Decimal("0.4")) for i in range(48)], T0)
    tariffs = {m: rating.load_tariff("io-go") for m in names}
    rater = Rater(storage, ManualClock(T0 + timedelta(days=2)), Metrics(), tariffs)
    t = time.perf_counter()
    stored = 0
    for m in names:
        stored += len(await rater.rate_days(m, {date(2025, 1, 1)}, "bench"))
    wall = time.perf_counter() - t
    await storage.close()
    return {"meters": meters, "rated_rows": stored, "seconds": round(wall, 2),
            "meter_days_per_s": round(meters / wall, 1)}  # fmt: skip


async def one(backend: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        async def run(target):
            return {
                "ingest": await ingest_api(target, Path(tmp), args.clients, args.batches),
                "year_query": await query_year(target),
                "rate_1000_meter_days": await rate_days(target, args.meters),
            }

        if backend == "sqlite":
            return await run(Path(tmp) / "bench.sqlite")
        async with pg_database() as url:
            return await run(url)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--meters", type=int, default=1000)
    args = ap.parse_args()
    out = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"}
    for b in args.backends.split(","):
        out[b] = asyncio.run(one(b, args))
        print(b, json.dumps(out[b]), flush=True)
    Path("bench/results").mkdir(exist_ok=True)
    Path("bench/results/storage.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
