"""Device backends: builds each configured device's adapter, and in simulation starts the
device's simulator in-process on loopback first (the adapter then talks to it over a real
socket, exactly as it would to the real device).

The registry is explicit: one entry per brand, mapping to a builder in :mod:`flexd.brands`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from core.clock import Clock
from flexd.config import Config, DeviceConfig, SiteConfig
from flexd.control.runtime import SiteRuntime
from simulator.world import SiteWorld, default_load_w

log = structlog.get_logger("flexd.wiring")
Closer = Callable[[], Awaitable[None]]


@dataclass
class SimulatedSite:
    """The in-process world behind one simulated site: battery/PV/load and the EVs."""

    world: SiteWorld
    evs: dict[str, Any] = field(default_factory=dict)  # device id -> simulator.ev.EV
    extra: dict[str, Any] = field(default_factory=dict)  # device id -> simulator handle


class Backends:
    def __init__(self, config: Config, clock: Clock, simulate: bool) -> None:
        self.config = config
        self.clock = clock
        self.simulate = simulate
        self.price_url: str | None = None
        self.price_sim: Any = None
        self.sim_sites: dict[str, SimulatedSite] = {}
        self.shared: dict[str, Any] = {}  # daemon-wide servers (e.g. the OCPP central system)
        self.vehicles: dict[str, Any] = {}  # charger device id -> its car's cloud API adapter
        self._closers: list[Closer] = []

    def on_close(self, closer: Closer) -> None:
        self._closers.append(closer)

    async def start(self, sites: dict[str, SiteRuntime]) -> None:
        import flexd.brands as brands

        if self.config.prices.source == "simulator":
            await self._start_price_simulator()
        for site in sites.values():
            for dev in site.devices.values():
                builder = brands.BUILDERS.get(dev.config.brand)
                if builder is None:
                    raise ValueError(f"no backend for brand {dev.config.brand!r}")
                dev.adapter = await builder(self, site.config, dev.config)
                dev.vehicle = self.vehicles.get(dev.id)

    def sim_site(self, site: SiteConfig) -> SimulatedSite:
        if site.id not in self.sim_sites:
            house = default_load_w()
            world = SiteWorld(self.clock)
            sim = SimulatedSite(world)
            # The house's meter sees the car too: the battery may end up feeding it.
            world.load = lambda t: house(t) + sum(ev.draw_w() for ev in sim.evs.values())
            self.sim_sites[site.id] = sim
        return self.sim_sites[site.id]

    def simulated(self, dev: DeviceConfig) -> bool:
        return self.simulate and dev.simulate

    async def _start_price_simulator(self) -> None:
        from datetime import time

        from simulator.octopus_api import OctopusPriceSimulator

        cfg = self.config.prices
        publish = time.fromisoformat(cfg.publish_local)
        self.price_sim = OctopusPriceSimulator(
            self.clock, publish_local=publish, late_minutes=cfg.late_minutes
        )
        runner, port = await self.price_sim.start()
        self.price_url = f"http://127.0.0.1:{port}"
        self.on_close(runner.cleanup)

    async def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await closer()
        self._closers.clear()
