"""The MQTT bus fixture: a Service with one simulated charger, its bus on a private broker."""

import asyncio

import pytest

from core.clock import ManualClock
from devices.base import ChargerState, ChargerStatus
from flexd.config import MqttConfig, parse_config
from flexd.control.runtime import build_sites
from flexd.mqtt.bus import MqttBus
from flexd.service import Service
from flexd.storage import Storage
from tests.mqtt.helpers import NOW


@pytest.fixture
async def bus(tmp_path, mosquitto):
    doc = {
        "daemon": {"database": str(tmp_path / "f.sqlite")},
        "sites": [{"id": "home", "meter": "M1", "tariff": "io-go", "account": "A1",
                   "devices": [{"id": "charger", "brand": "ocpp", "charge_point_id": "CP",
                                "simulate": True,
                                "ev": {"capacity_kwh": 60, "max_charge_kw": 7.4,
                                       "efficiency": 0.9, "initial_soc_pct": 25,
                                       "plug_in_local": "18:00"}}]}],
    }  # fmt: skip
    cfg = parse_config(doc, tmp_path, env={})
    storage = await Storage.open(cfg.database)
    service = Service(cfg, storage, ManualClock(NOW), build_sites(cfg.sites))
    dev = service.device("charger")
    dev.state = ChargerState(NOW, True, 0.0, 0.0, 10.0, ChargerStatus.SUSPENDED_EV, 40.0)
    dev.last_ok = NOW
    service.resolve_ev_soc(dev, NOW)
    mcfg = MqttConfig(enabled=True, host=mosquitto.host, port=mosquitto.port)
    b = MqttBus(service, mcfg, backoff_s=0.05, backoff_cap_s=0.2)
    task = asyncio.create_task(b.run())
    b.task_for_test = task  # type: ignore[attr-defined]  (a test may stop the bus itself)
    await asyncio.wait_for(b.connected.wait(), 10)
    yield b, service, mosquitto
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await storage.close()
