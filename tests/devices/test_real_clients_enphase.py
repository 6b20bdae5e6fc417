"""pyenphase, Home Assistant's Enphase client, takes flexd's Enphase simulator for an IQ Gateway.

``Envoy(host)`` accepts ``host:port`` and builds every URL as ``https://{host}{path}``, and it
takes our own aiohttp session, here one that trusts the simulator's self-signed certificate (by
default pyenphase does not verify gateways' certificates). It reads ``/info`` without a token,
checks the token at ``/auth/check_jwt``, then probes and reads: the CT meters, the production
report, the microinverters, the ensemble inventory (the IQ Battery), the battery aggregate and
power, and the tariff's storage settings. Every decoded value is compared with the world.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from pyenphase import Envoy
from pyenphase.const import SupportedFeatures
from pyenphase.exceptions import EnvoyAuthenticationError

from core.clock import ManualClock
from simulator import enphase as E

NOON = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sim() -> AsyncIterator[E.EnphaseSimulator]:
    clock = ManualClock(NOON)
    world = E.enphase_world(clock)
    # A slow charger, so a midday PV surplus also exports: every flow has its own number.
    world.battery.max_charge_w = 1500
    s = E.EnphaseSimulator(world)
    await s.start()
    world.snapshot()
    clock.advance(1800)  # half an hour of midday: the lifetime counters have moved
    try:
        yield s
    finally:
        await s.stop()


def _session(sim: E.EnphaseSimulator) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=sim.site.client_context()))


async def test_pyenphase_reads_the_gateway_as_the_world_is(sim: E.EnphaseSimulator) -> None:
    world = sim.world
    async with _session(sim) as session:
        envoy = Envoy(f"127.0.0.1:{sim.site.port}", client=session)
        await envoy.setup()  # /info, before any token
        assert str(envoy.firmware) == E.FIRMWARE.removeprefix("D")
        assert envoy.serial_number == sim.serial and envoy.part_number == E.PART_NUMBER
        await envoy.authenticate(token=sim.token)
        data = await envoy.update()
        inventory = await envoy.request("/inventory.json?deleted=1")
        pcus = (await inventory.json())[0]
    snap, b = world.snapshot(), world.battery

    features = envoy.supported_features
    for f in ("PRODUCTION", "METERING", "NET_CONSUMPTION", "TOTAL_CONSUMPTION", "ENCHARGE",
              "INVERTERS", "TARIFF", "CTMETERS"):  # fmt: skip
        assert SupportedFeatures[f] in features, f
    assert SupportedFeatures.ACB not in features and SupportedFeatures.ENPOWER not in features

    prod, cons, net = data.system_production, data.system_consumption, data.system_net_consumption
    assert prod is not None and cons is not None and net is not None
    assert prod.watts_now == round(snap.pv_w) and snap.pv_w > 1000
    assert prod.watt_hours_lifetime == round(snap.pv_kwh * 1000) > 0
    assert cons.watts_now == round(snap.load_w)
    assert cons.watt_hours_lifetime == round(snap.load_kwh * 1000)
    assert net.watts_now == round(snap.grid_w) < 0  # exporting: negative net consumption
    assert net.watt_hours_lifetime == round((snap.import_kwh - snap.export_kwh) * 1000)
    assert data.ctmeter_production is not None and data.ctmeter_consumption is not None
    assert data.ctmeter_production.active_power == round(snap.pv_w)
    assert data.ctmeter_consumption.active_power == round(snap.grid_w)

    agg = data.encharge_aggregate
    assert agg is not None
    assert agg.state_of_charge == round(b.soc_pct) and 50 < b.soc_pct < 100
    assert agg.available_energy == round(b.soc_kwh * 1000)
    assert agg.max_available_capacity == round(b.capacity_kwh * 1000)
    assert agg.reserve_state_of_charge == round(world.reserve_pct)
    assert data.encharge_inventory is not None and data.encharge_power is not None
    (battery,) = data.encharge_inventory.values()
    assert battery.serial_number == E.BATTERY_SERIAL
    assert battery.encharge_capacity == round(b.capacity_kwh * 1000)
    assert battery.percent_full == round(b.soc_pct)
    (power,) = data.encharge_power.values()
    assert power.real_power_mw == round(snap.battery_w * 1000) < 0  # charging: negative
    assert power.soc == round(b.soc_pct)

    assert len(data.inverters) == E.MICROINVERTERS
    assert sum(i.last_report_watts for i in data.inverters.values()) == round(snap.pv_w)
    assert all(i.last_report_watts <= i.max_report_watts for i in data.inverters.values())
    assert pcus["type"] == "PCU" and len(pcus["devices"]) == E.MICROINVERTERS
    assert {d["serial_num"] for d in pcus["devices"]} == set(data.inverters)

    assert data.tariff is not None and data.tariff.storage_settings is not None
    settings = data.tariff.storage_settings
    assert settings.mode.value == sim.storage["mode"] == "self-consumption"
    assert settings.reserved_soc == pytest.approx(world.reserve_pct)


async def test_pyenphase_is_refused_a_wrong_token_but_reads_info(sim: E.EnphaseSimulator) -> None:
    async with _session(sim) as session:
        envoy = Envoy(f"127.0.0.1:{sim.site.port}", client=session)
        await envoy.setup()
        assert envoy.serial_number == sim.serial
        with pytest.raises(EnvoyAuthenticationError):
            await envoy.authenticate(token=E.make_jwt("000000000000"))
