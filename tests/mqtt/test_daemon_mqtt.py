"""The running daemon over MQTT: a bump-charge command reaches the simulated charger."""

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import aiomqtt

from core.clock import ScaledClock
from devices.base import ChargerStatus
from flexd.config import MqttConfig, parse_config
from flexd.daemon import Daemon
from flexd.simulation import simulated_backends
from flexd.storage import Storage

START = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)  # the evening peak: the plan waits to charge


def config(tmp_path, broker):
    doc = {
        "daemon": {"database": str(tmp_path / "flexd.sqlite"), "log_format": "json"},
        "api": {"enabled": False},
        "prices": {"source": "simulator"},
        "sites": [{"id": "home", "meter": "M1", "tariff": "io-go", "reserve_pct": 10, "devices": [
            {"id": "battery", "brand": "givenergy", "simulate": True, "poll_seconds": 30},
            {"id": "charger", "brand": "ocpp", "charge_point_id": "CP1", "simulate": True,
             "poll_seconds": 30,
             "ev": {"capacity_kwh": 60, "max_charge_kw": 7.4, "initial_soc_pct": 30},
             "preferences": {"weekday_ready_by": "07:00", "target_soc_pct": 80}},
        ]}],
    }  # fmt: skip
    cfg = parse_config(doc, tmp_path, env={})
    mqtt = MqttConfig(enabled=True, host=broker.host, port=broker.port, ha_discovery=False)
    return dataclasses.replace(cfg, mqtt=mqtt)


async def retained(broker, topic):
    async with aiomqtt.Client(broker.host, broker.port) as c:
        await c.subscribe(topic, qos=1)
        async with asyncio.timeout(10):
            async for m in c.messages:
                return m


async def test_bump_over_mqtt_makes_the_simulated_car_charge(tmp_path, mosquitto):
    cfg = config(tmp_path, mosquitto)
    clock = ScaledClock(START, 300.0)
    storage = await Storage.open(cfg.database)
    daemon = Daemon(cfg, clock, storage, simulated_backends(cfg, clock),
                    until=START + timedelta(hours=3))  # fmt: skip
    seen: dict[str, object] = {}

    async def drive(d):
        ev = d.backends.hooks.sim_sites["home"].evs["charger"]
        async with asyncio.timeout(60):
            while (await retained(mosquitto, "flexd/home/status")).payload != b"online":
                await asyncio.sleep(0.1)
            # Planned and dispatched: the car waits for the night (a charger may run at full
            # power for a moment after plug-in, before its zero profile arrives).
            charger = d.sites["home"].devices["charger"]

            def waiting() -> bool:
                st = charger.state
                return (st is not None and st.plugged_in and ev.draw_w() == 0
                        and st.status == ChargerStatus.SUSPENDED_EVSE)  # fmt: skip

            while d.sites["home"].plan is None or not waiting():
                await asyncio.sleep(0.05)
            seen["before_w"] = ev.draw_w()
            async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
                await c.publish("flexd/home/devices/charger/bump-charge/set",
                                json.dumps({"idempotency_key": "tap-1"}), qos=1)  # fmt: skip
            while ev.draw_w() <= 0:
                await asyncio.sleep(0.05)
            seen["after_w"] = ev.draw_w()
            seen["tariff"] = json.loads((await retained(mosquitto, "flexd/home/tariff")).payload)
            seen["dispatches"] = json.loads(
                (await retained(mosquitto, "flexd/home/devices/charger/dispatches")).payload
            )
        d.stop.set()

    async def started(d):
        asyncio.get_running_loop().create_task(drive(d))

    await asyncio.wait_for(daemon.run(on_started=started), timeout=120)
    boosts = await storage.dispatches(device_id="charger", kind="boost")
    await storage.close()
    assert seen["before_w"] == 0
    assert seen["after_w"] > 6000  # the car takes what the charger offers: full power
    assert len(boosts) == 1
    assert [d["type"] for d in seen["dispatches"]] == ["BOOST"]
    assert seen["tariff"]["band"] == "peak" and seen["tariff"]["import_price_p"] > 0
