"""A fleet instance sets sites up concurrently and gives them back one by one: closing one
site's adapters must leave every other site's connected (real adapters, real simulators)."""

import asyncio
from datetime import UTC, datetime

from core.clock import ScaledClock
from flexd.config import parse_config
from flexd.control.runtime import build_sites
from flexd.wiring import Backends
from simulator.givenergy import GivEnergySimulator
from simulator.world import SiteWorld


async def test_closing_one_site_leaves_the_others_connected(tmp_path):
    clock = ScaledClock(datetime(2026, 1, 15, 12, tzinfo=UTC), 1.0)
    sims = [GivEnergySimulator(SiteWorld(clock)) for _ in range(4)]
    ports = [await s.start(0) for s in sims]
    doc = {
        "daemon": {"database": str(tmp_path / "x.sqlite")},
        "sites": [{"id": f"s{i}", "meter": f"M{i}", "tariff": "io-go", "devices": [
            {"id": f"inv{i}", "brand": "givenergy", "host": "127.0.0.1", "port": port,
             "frame_gap_s": 0}]} for i, port in enumerate(ports)],
    }  # fmt: skip
    cfg = parse_config(doc, tmp_path, env={})
    sites = build_sites(cfg.sites)
    backends = Backends(cfg, clock)
    try:
        closers = await asyncio.gather(*(backends.start_site(s) for s in sites.values()))
        for i, site in enumerate(sites.values()):
            assert (await site.devices[f"inv{i}"].adapter.read_state()).battery_capacity_kwh > 0
        assert [len(s._conns) for s in sims] == [1, 1, 1, 1]  # each dongle sees its one client
        await closers[1]()
        await asyncio.sleep(0.2)
        assert [len(s._conns) for s in sims] == [1, 0, 1, 1]  # only site 1's went away
        for i in (0, 2, 3):  # and the others still read
            state = await sites[f"s{i}"].devices[f"inv{i}"].adapter.read_state()
            assert state.battery_capacity_kwh > 0
        for i in (0, 2, 3):
            await closers[i]()
    finally:
        await backends.close()
        for s in sims:
            await s.stop()
