"""One builder per brand: make the adapter (starting the brand's simulator first when the
device is simulated). The registry is an explicit dict, not import-time registration."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from devices.base import ChargerAdapter, InverterAdapter
from flexd.config import DeviceConfig, SiteConfig

if TYPE_CHECKING:
    from flexd.wiring import Backends

LONDON = ZoneInfo("Europe/London")
FLEET_API_EU = "https://fleet-api.prd.eu.vn.cloud.tesla.com"
Adapter = InverterAdapter | ChargerAdapter
Builder = Callable[["Backends", SiteConfig, DeviceConfig], Awaitable[Adapter]]


async def _serve(b: Backends, sim: Any) -> int:
    """Start a device simulator on loopback for the daemon's lifetime; return its port."""
    port: int = await sim.start()
    b.on_close(sim.stop)
    return port


def _gateway_ssl(dev: DeviceConfig) -> ssl.SSLContext | bool:
    """A home gateway presents its own self-signed certificate: trust the ``gateway_ca`` file
    given, else do not verify it."""
    ca = dev.options.get("gateway_ca")
    return ssl.create_default_context(cafile=str(ca)) if ca else False


async def solaredge(b: Backends, site: SiteConfig, dev: DeviceConfig) -> Adapter:
    from devices.solaredge.adapter import SolarEdgeAdapter

    host, port = dev.host, dev.port or 1502
    if b.simulated(dev):
        from simulator.solaredge import SolarEdgeSimulator

        host, port = "127.0.0.1", await _serve(b, SolarEdgeSimulator(b.sim_site(site).world))
    adapter = SolarEdgeAdapter(host, port, b.clock, unit=int(dev.options.get("unit", 1)),
                               timeout_s=dev.timeout_s)  # fmt: skip
    b.on_close(adapter.close)
    return adapter


async def givenergy(b: Backends, site: SiteConfig, dev: DeviceConfig) -> Adapter:
    from devices.givenergy.adapter import GivEnergyAdapter

    host, port = dev.host, dev.port or 8899
    if b.simulated(dev):
        from simulator.givenergy import GivEnergySimulator

        host, port = "127.0.0.1", await _serve(b, GivEnergySimulator(b.sim_site(site).world))
    address = int(dev.options.get("device_address", 0x11))
    gap = 0.0 if b.simulated(dev) else float(dev.options.get("frame_gap_s", 0.25))
    adapter = GivEnergyAdapter(
        host, port, b.clock, timeout_s=dev.timeout_s, device_address=address, frame_gap_s=gap
    )
    b.on_close(adapter.close)
    return adapter


async def powerwall(b: Backends, site: SiteConfig, dev: DeviceConfig) -> Adapter:
    from devices.powerwall.adapter import PowerwallAdapter

    host, port = dev.host, dev.port or 443
    opts = dev.options
    fleet_url: str | None = str(opts.get("fleet_url", FLEET_API_EU))
    site_id = str(opts.get("energy_site_id", ""))
    password, fleet_token = dev.secrets.get("password", ""), dev.secrets.get("fleet_token", "")
    gateway_ssl = _gateway_ssl(dev)
    if b.simulated(dev):
        from simulator.powerwall import PowerwallSimulator, powerwall_battery

        world = b.sim_site(site).world
        world.battery = powerwall_battery()
        sim = PowerwallSimulator(world)
        host, port = "127.0.0.1", await _serve(b, sim)
        password, fleet_token, site_id, fleet_url = sim.password, sim.fleet_token, sim.site_id, None
        gateway_ssl = sim.site.client_context()
    adapter = PowerwallAdapter(
        host, port, b.clock, password=password, fleet_token=fleet_token, site_id=site_id,
        fleet_url=fleet_url, ssl_context=gateway_ssl, email=str(opts.get("email", "")),
        timeout_s=dev.timeout_s,
    )
    b.on_close(adapter.close)
    return adapter


async def enphase(b: Backends, site: SiteConfig, dev: DeviceConfig) -> Adapter:
    from devices.enphase.adapter import EnphaseAdapter

    host, port = dev.host, dev.port or 443
    token = dev.secrets.get("token", "")
    gateway_ssl = _gateway_ssl(dev)
    if b.simulated(dev):
        from simulator.enphase import EnphaseSimulator, enphase_battery

        world = b.sim_site(site).world
        world.battery = enphase_battery()
        sim = EnphaseSimulator(world)
        host, port = "127.0.0.1", await _serve(b, sim)
        token, gateway_ssl = sim.token, sim.site.client_context()
    adapter = EnphaseAdapter(
        host, port, b.clock, token=token, ssl_context=gateway_ssl, timeout_s=dev.timeout_s
    )
    b.on_close(adapter.close)
    return adapter


def next_local(after: datetime, hhmm: str) -> datetime:
    """The next local wall-clock ``hhmm`` after ``after`` (UTC)."""
    t = time.fromisoformat(hhmm)
    local = after.astimezone(LONDON)
    candidate = datetime.combine(local.date(), t, tzinfo=LONDON)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), t, tzinfo=LONDON)
    return candidate.astimezone(after.tzinfo)


async def _central_system(b: Backends, dev: DeviceConfig) -> object:
    from devices.ocpp.csms import CentralSystem

    csms = b.shared.get("csms")
    if csms is None:
        port = 0 if b.simulate else int(dev.options.get("csms_port", 9000))
        host = str(dev.options.get("csms_host", "127.0.0.1"))
        csms = CentralSystem(b.clock, host=host, port=port)
        await csms.start()
        b.shared["csms"] = csms
        b.on_close(csms.stop)
    cp_id = str(dev.options.get("charge_point_id", dev.id))
    if "password" in dev.secrets:
        csms.passwords[cp_id] = dev.secrets["password"]
    return csms


async def ocpp(b: Backends, site: SiteConfig, dev: DeviceConfig) -> Adapter:
    from devices.ocpp.adapter import OcppChargerAdapter
    from devices.ocpp.csms import CentralSystem

    csms = await _central_system(b, dev)
    assert isinstance(csms, CentralSystem)
    cp_id = str(dev.options.get("charge_point_id", dev.id))
    ev_cfg = dev.ev
    max_w = (ev_cfg.max_charge_kw if ev_cfg else 7.4) * 1000
    ev = _simulated_ev(b, site, dev, max_w)
    if ev is not None:
        from simulator.ocpp_charger import OcppChargerSimulator

        url = f"ws://127.0.0.1:{csms.port}"
        sim = OcppChargerSimulator(
            url, cp_id, ev, b.clock, max_power_w=max_w, password=dev.secrets.get("password")
        )
        _run_simulator(b, site, dev, sim)
        await asyncio.wait_for(sim.connected.wait(), 10)
    await _vehicle_api(b, site, dev)
    return OcppChargerAdapter(csms, cp_id, b.clock, max_power_w=max_w, timeout_s=dev.timeout_s)


def _run_simulator(b: Backends, site: SiteConfig, dev: DeviceConfig, sim: Any) -> None:
    """Run a charger simulator (``run()`` until ``stop()``) for the daemon's lifetime."""
    task = asyncio.get_running_loop().create_task(sim.run(), name=f"sim:{dev.id}")
    b.sim_site(site).extra[dev.id] = sim

    async def stop() -> None:
        sim.stop()
        await asyncio.wait([task], timeout=3)

    b.on_close(stop)


def _simulated_ev(b: Backends, site: SiteConfig, dev: DeviceConfig, max_w: float) -> Any:
    """The simulated car behind a simulated charger (None when the charger is real), with its
    plug-in and unplug times from the config as the next such local times."""
    ev_cfg = dev.ev
    if not b.simulated(dev) or ev_cfg is None:
        return None
    from simulator.ev import EV, PlugEvent

    now = b.clock.now()
    events = []
    if ev_cfg.plug_in_local:
        events.append(PlugEvent(next_local(now, ev_cfg.plug_in_local), True))
    if ev_cfg.unplug_local:
        events.append(PlugEvent(next_local(now, ev_cfg.unplug_local), False))
    ev = EV(b.clock, capacity_kwh=ev_cfg.capacity_kwh,
            soc_kwh=ev_cfg.capacity_kwh * ev_cfg.initial_soc_pct / 100, max_ac_w=max_w,
            plugged_in=not ev_cfg.plug_in_local, events=sorted(events, key=lambda e: e.at),
            reports_soc=bool(dev.options.get("reports_soc", True)))  # fmt: skip
    b.sim_site(site).evs[dev.id] = ev
    return ev


async def openevse(b: Backends, site: SiteConfig, dev: DeviceConfig) -> Adapter:
    """OpenEVSE over MQTT: the charger and flexd meet on a broker (``broker_host`` and
    ``broker_port`` on the device, else the [mqtt] broker). A simulated one runs its simulator
    against that same broker, so simulation needs a broker too."""
    from devices.openevse.adapter import OpenEvseAdapter

    host = str(dev.options.get("broker_host", b.config.mqtt.host))
    port = int(dev.options.get("broker_port", b.config.mqtt.port))
    charger_id = str(dev.options.get("charger_id", dev.id))
    max_a = int(dev.options.get("max_current_a", 32))
    ev = _simulated_ev(b, site, dev, (dev.ev.max_charge_kw if dev.ev else 7.4) * 1000)
    if ev is not None:
        from simulator.openevse import OpenEvseSimulator

        sim = OpenEvseSimulator(host, port, charger_id, ev, b.clock, max_current_a=max_a)
        _run_simulator(b, site, dev, sim)
    adapter = OpenEvseAdapter(host, port, charger_id, b.clock, max_current_a=max_a,
                              timeout_s=dev.timeout_s)  # fmt: skip
    b.on_close(adapter.close)
    await adapter.start()
    await _vehicle_api(b, site, dev)
    return adapter


async def _vehicle_api(b: Backends, site: SiteConfig, dev: DeviceConfig) -> None:
    """The charger's car through its maker's cloud API, when configured (``vehicle_api_url``
    and ``vin``, tokens from ``vehicle_token_env``/``_file``), or ``vehicle_api = true`` on a
    simulated charger: a simulated car API then serves the simulated EV."""
    import ssl

    from devices.vehicle_api import VehicleApiAdapter

    opts = dev.options
    adapter: VehicleApiAdapter | None = None
    if b.simulated(dev) and opts.get("vehicle_api") is True:
        from simulator.vehicle_api import VehicleApiSimulator

        ev = b.sim_site(site).evs.get(dev.id)
        if ev is None:
            return
        sim = VehicleApiSimulator(ev, b.clock)
        await sim.start()
        b.on_close(sim.stop)
        adapter = VehicleApiAdapter(
            sim.base_url, sim.vin, sim.token, refresh_token=sim.refresh_token,
            ssl_context=ssl.create_default_context(cafile=str(sim.cafile)),
            timeout_s=dev.timeout_s,
        )  # fmt: skip
    elif opts.get("vehicle_api_url"):
        adapter = VehicleApiAdapter(
            str(opts["vehicle_api_url"]), str(opts.get("vin", "")),
            dev.secrets.get("vehicle_token", ""),
            refresh_token=dev.secrets.get("vehicle_refresh_token"), timeout_s=dev.timeout_s,
        )  # fmt: skip
    if adapter is not None:
        b.vehicles[dev.id] = adapter
        b.on_close(adapter.close)


BUILDERS: dict[str, Builder] = {
    "givenergy": givenergy,
    "solaredge": solaredge,
    "powerwall": powerwall,
    "enphase": enphase,
    "ocpp": ocpp,
    "openevse": openevse,
}
