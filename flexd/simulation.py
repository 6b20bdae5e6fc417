"""Simulated mode: the one module of flexd that imports :mod:`simulator`.

Each simulated device gets its brand's simulator in-process on loopback, and its adapter is
pointed at it; the adapter then talks to it over a real socket, exactly as it would to the real
device. One :class:`~simulator.world.SiteWorld` per site carries the battery, PV and house load;
the simulated cars draw through it. The price feed can be served by the Octopus API simulator.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from core.clock import Clock
from core.timegrid import next_local
from devices.ocpp.adapter import OcppChargerAdapter
from devices.openevse import brand as openevse_brand
from devices.options import Endpoint
from devices.vehicle_api import VehicleApiAdapter
from flexd.config import Config, DeviceConfig, SiteConfig
from flexd.wiring import Backends
from simulator.enphase import EnphaseSimulator, enphase_battery
from simulator.ev import EV, PlugEvent
from simulator.givenergy import GivEnergySimulator
from simulator.ocpp_charger import OcppChargerSimulator
from simulator.octopus_api import OctopusPriceSimulator
from simulator.openevse import OpenEvseSimulator
from simulator.powerwall import PowerwallSimulator, powerwall_battery
from simulator.solaredge import SolarEdgeSimulator
from simulator.vehicle_api import VehicleApiSimulator
from simulator.world import SiteWorld, default_load_w


@dataclass
class SimulatedSite:
    """The in-process world behind one simulated site: battery/PV/load and the EVs."""

    world: SiteWorld
    evs: dict[str, EV] = field(default_factory=dict)  # device id -> the car
    extra: dict[str, Any] = field(default_factory=dict)  # device id -> charger simulator


class Simulation:
    """The :class:`flexd.wiring.DeviceHooks` of simulated mode. ``devices=False`` serves only
    the price feed (``prices.source = "simulator"`` on real devices)."""

    def __init__(self, config: Config, clock: Clock, devices: bool = True) -> None:
        self.config = config
        self.clock = clock
        self.devices = devices
        self.sim_sites: dict[str, SimulatedSite] = {}
        self.price_sim: OctopusPriceSimulator | None = None

    def simulated(self, dev: DeviceConfig) -> bool:
        return self.devices and dev.simulate

    def sim_site(self, site: SiteConfig) -> SimulatedSite:
        if site.id not in self.sim_sites:
            house = default_load_w()
            world = SiteWorld(self.clock)
            sim = SimulatedSite(world)
            # The house's meter sees the car too: the battery may end up feeding it.
            world.load = lambda t: house(t) + sum(ev.draw_w() for ev in sim.evs.values())
            self.sim_sites[site.id] = sim
        return self.sim_sites[site.id]

    # --- DeviceHooks ----------------------------------------------------------------------------

    async def start(self, b: Backends) -> None:
        cfg = self.config.prices
        if cfg.source != "simulator":
            return
        self.price_sim = OctopusPriceSimulator(
            self.clock, publish_local=time.fromisoformat(cfg.publish_local),
            late_minutes=cfg.late_minutes,
        )  # fmt: skip
        runner, port = await self.price_sim.start()
        b.price_url = f"http://127.0.0.1:{port}"
        b.on_close(runner.cleanup)

    async def before(
        self, b: Backends, site: SiteConfig, dev: DeviceConfig, ep: Endpoint, options: Any
    ) -> tuple[Endpoint, Any]:
        if dev.brand == "ocpp" and self.simulated(dev):
            # Simulated chargers dial in to the central system on whatever port is free.
            options = dataclasses.replace(options, csms_port=0)
        if not self.simulated(dev):
            return ep, options
        world = self.sim_site(site).world
        if dev.brand == "solaredge":
            ep = await self._serve(b, ep, SolarEdgeSimulator(world))
        elif dev.brand == "givenergy":
            ep = await self._serve(b, ep, GivEnergySimulator(world))
            options = dataclasses.replace(options, frame_gap_s=0.0)
        elif dev.brand == "powerwall":
            world.battery = powerwall_battery()
            pw = PowerwallSimulator(world)
            ep = await self._serve(b, ep, pw)
            ep = dataclasses.replace(ep, ssl_context=pw.site.client_context(),
                                     secrets={"password": pw.password,
                                              "fleet_token": pw.fleet_token})  # fmt: skip
            options = dataclasses.replace(options, energy_site_id=pw.site_id, fleet_url=None)
        elif dev.brand == "enphase":
            world.battery = enphase_battery()
            en = EnphaseSimulator(world)
            ep = await self._serve(b, ep, en)
            ep = dataclasses.replace(ep, ssl_context=en.site.client_context(),
                                     secrets={"token": en.token})  # fmt: skip
        elif dev.brand == "openevse":
            ev = self._ev(site, dev, ep.max_power_w, options.reports_soc)
            host, port = openevse_brand.broker(options, b)
            self._run(b, site, dev, OpenEvseSimulator(host, port, options.charger_id or dev.id,
                      ev, self.clock, max_current_a=options.max_current_a))  # fmt: skip
        return ep, options

    async def after(self, b: Backends, site: SiteConfig, dev: DeviceConfig, adapter: Any) -> None:
        if not self.simulated(dev) or not isinstance(adapter, OcppChargerAdapter):
            return
        # The charge point dials in to the central system the adapter runs on.
        ev = self._ev(site, dev, adapter.max_power_w, dev.options.reports_soc)
        url = f"ws://127.0.0.1:{adapter.csms.port}"
        sim = OcppChargerSimulator(url, adapter.cp_id, ev, self.clock,
                                   max_power_w=adapter.max_power_w,
                                   password=dev.secrets.get("password"))  # fmt: skip
        self._run(b, site, dev, sim)
        await asyncio.wait_for(sim.connected.wait(), 10)

    async def vehicle(self, b: Backends, site: SiteConfig, dev: DeviceConfig) -> Any:
        """``vehicle_api = true`` on a simulated charger: its car on a simulated car API."""
        ev = self.sim_site(site).evs.get(dev.id) if self.simulated(dev) else None
        if ev is None or not dev.options.vehicle_api:
            return None
        sim = VehicleApiSimulator(ev, self.clock)
        await sim.start()
        b.on_close(sim.stop)
        return VehicleApiAdapter(
            sim.base_url, sim.vin, sim.token, refresh_token=sim.refresh_token,
            ssl_context=ssl.create_default_context(cafile=str(sim.cafile)),
            timeout_s=dev.timeout_s,
        )  # fmt: skip

    # --- helpers --------------------------------------------------------------------------------

    @staticmethod
    async def _serve(b: Backends, ep: Endpoint, sim: Any) -> Endpoint:
        """Start a device simulator on loopback for the daemon's lifetime; point ``ep`` at it."""
        port: int = await sim.start()
        b.on_close(sim.stop)
        return dataclasses.replace(ep, host="127.0.0.1", port=port)

    def _run(self, b: Backends, site: SiteConfig, dev: DeviceConfig, sim: Any) -> None:
        """Run a charger simulator (``run()`` until ``stop()``) for the daemon's lifetime."""
        task = asyncio.get_running_loop().create_task(sim.run(), name=f"sim:{dev.id}")
        self.sim_site(site).extra[dev.id] = sim

        async def stop() -> None:
            sim.stop()
            await asyncio.wait([task], timeout=3)

        b.on_close(stop)

    def _ev(self, site: SiteConfig, dev: DeviceConfig, max_w: float, reports_soc: bool) -> EV:
        """The simulated car behind a simulated charger, with its plug-in and unplug times from
        the config as the next such local times."""
        ev_cfg = dev.ev
        assert ev_cfg is not None  # every charger's config has an [ev] table (defaults)
        now = self.clock.now()
        events = []
        if ev_cfg.plug_in_local:
            events.append(PlugEvent(next_local(now, ev_cfg.plug_in_local), True))
        if ev_cfg.unplug_local:
            events.append(PlugEvent(next_local(now, ev_cfg.unplug_local), False))
        ev = EV(self.clock, capacity_kwh=ev_cfg.capacity_kwh,
                soc_kwh=ev_cfg.capacity_kwh * ev_cfg.initial_soc_pct / 100, max_ac_w=max_w,
                plugged_in=not ev_cfg.plug_in_local, events=sorted(events, key=lambda e: e.at),
                reports_soc=reports_soc)  # fmt: skip
        self.sim_site(site).evs[dev.id] = ev
        return ev


def simulated_backends(config: Config, clock: Clock, devices: bool = True) -> Backends:
    """Device wiring with every ``simulate = true`` device on its simulator."""
    return Backends(config, clock, Simulation(config, clock, devices))
