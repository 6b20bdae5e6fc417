"""The daemon under concurrent writes, on SQLite and PostgreSQL: two sites close the same
half-hours while billing clients post reading batches through the API; then a kill -9 of a
running daemon process and a restart. Nothing is lost, doubled or failed."""

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from core.clock import ScaledClock
from flexd.config import hash_token, parse_config
from flexd.daemon import Daemon
from flexd.simulation import simulated_backends
from flexd.storage import Storage

SPEED = 4000.0
BILL = "bill-secret"
HH = timedelta(minutes=30)


def _doc(database, start, hours, port=0):
    def site(sid, meter):
        return {"id": sid, "meter": meter, "tariff": "io-go",
                "devices": [{"id": f"{sid}-battery", "brand": "givenergy", "simulate": True,
                             "poll_seconds": 30, "timeout_s": 0.3}]}  # fmt: skip

    return {
        "daemon": {"database": str(database), "log_format": "json"},
        "api": {"port": port, "tokens": [{"name": "bill", "role": "billing",
                                          "sha256": hash_token(BILL)}]},
        "prices": {"source": "simulator"},
        "simulation": {"start": start.isoformat(), "speed": SPEED, "hours": hours},
        "sites": [site("north", "M1"), site("south", "M2")],
    }  # fmt: skip


async def test_two_sites_and_twenty_billing_clients_at_once_lose_nothing(tmp_path, database):
    start = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    cfg = parse_config(_doc(database, start, 4), tmp_path, env={})
    storage = await Storage.open(cfg.database)
    clock = ScaledClock(start, SPEED)
    daemon = Daemon(cfg, clock, storage, simulated_backends(cfg, clock),
                    until=start + timedelta(hours=4))  # fmt: skip
    yesterday = start.replace(hour=0) - timedelta(days=1)
    statuses: list[int] = []

    async def billing(d):
        base = f"http://127.0.0.1:{d.api_port}"
        async with aiohttp.ClientSession(base) as http:
            async def client(c):
                meter = "M1" if c % 2 else "M2"
                for b in range(3):
                    body = {"readings": [
                        {"start": (yesterday + i * HH).isoformat(), "kwh": f"0.{(c + b + i) % 80 + 10}"}
                        for i in range(48)]}  # fmt: skip
                    r = await http.post(f"/api/v1/meters/{meter}/readings",
                                        headers={"Authorization": f"Bearer {BILL}"}, json=body)  # fmt: skip
                    statuses.append(r.status)
                    await asyncio.sleep(0.05)

            await asyncio.gather(*(client(c) for c in range(20)))

    tasks = []

    async def started(d):
        tasks.append(asyncio.get_running_loop().create_task(billing(d)))

    await asyncio.wait_for(daemon.run(on_started=started), timeout=120)
    await asyncio.gather(*tasks)
    assert statuses == [200] * 60
    assert daemon.metrics.cycle_failures.values == {}
    for meter in ("M1", "M2"):
        posted = await storage.readings(meter, yesterday, yesterday + timedelta(days=1))
        assert len(posted) == 48  # every posted half-hour once
        live = await storage.readings(meter, start, start + timedelta(hours=4))
        starts = sorted({r.start for r in live if r.register == "import"})
        assert len(starts) >= 6 and all(b - a == HH for a, b in itertools.pairwise(starts))
        rated = await storage.latest_rated(meter, yesterday, start + timedelta(hours=4))
        assert {(r.start, r.register) for r in rated if r.register != "standing"} == {
            (r.start, r.register) for r in posted + live if r.register != "ev"}  # fmt: skip
    assert await storage.integrity_ok()
    await storage.close()


def _flexd(config: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flexd", "run", "--config", str(config), "--simulate", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


async def test_kill_9_mid_write_then_restart_loses_and_doubles_nothing(tmp_path, database):
    start = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    doc = _doc(database, start, 3)
    lines = [f'[daemon]\ndatabase = "{database}"\nlog_format = "json"\n',
             '[api]\nenabled = false\n', '[prices]\nsource = "simulator"\n',
             f'[simulation]\nstart = "{start.isoformat()}"\nspeed = {SPEED}\nhours = 3\n']
    for s in doc["sites"]:
        d = s["devices"][0]
        lines.append(f'[[sites]]\nid = "{s["id"]}"\nmeter = "{s["meter"]}"\ntariff = "io-go"\n'
                     f'[[sites.devices]]\nid = "{d["id"]}"\nbrand = "givenergy"\nsimulate = true\n'
                     'poll_seconds = 30\ntimeout_s = 0.3\n')  # fmt: skip
    config = tmp_path / "flexd.toml"
    config.write_text("\n".join(lines))
    proc = _flexd(config)
    storage = await Storage.open(database)
    try:
        # Kill it once it has stored a few half-hours, in the middle of its writing.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            n = await storage.query("SELECT COUNT(*) FROM readings")
            if n[0][0] >= 8:
                break
            await asyncio.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        before = await storage.readings("M1", start - HH, start + timedelta(hours=6))
        # Restart: it carries on from the database (simulated time starts again at the same
        # configured instant, so it rewrites the same half-hours: they must not double).
        again = _flexd(config, "--hours", "1.5")
        _, err = again.communicate(timeout=120)
        assert again.returncode == 0, err[-2000:]
        after = await storage.readings("M1", start - HH, start + timedelta(hours=6))
        keys = [(r.start, r.register) for r in after]
        assert len(keys) == len(set(keys))
        assert {(r.start, r.register) for r in before} <= set(keys)
        assert await storage.integrity_ok()
        versions = await storage.query(
            "SELECT meter, start, register, COUNT(*), MAX(version) FROM rated_slots "
            "GROUP BY meter, start, register")
        assert versions and all(n == v for _m, _s, _r, n, v in versions)  # 1..n, no gaps
    finally:
        if proc.poll() is None:
            proc.kill()
        await storage.close()
