"""Every site's status, on a clean stop and when the daemon dies; TLS to the broker; the tariff
topic and its Home Assistant sensors."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from flexd.config import MqttConfig
from flexd.mqtt.bus import MqttBus
from flexd.service import Event
from tests.mqtt.helpers import NOW, first

REPO = Path(__file__).resolve().parents[2]


async def statuses(broker, sites, tls=None):
    """The retained status of each site, as a fresh subscriber sees it."""
    seen = {}
    async with aiomqtt.Client(broker.host, broker.port, tls_context=tls) as c:
        for s in sites:
            await c.subscribe(f"flexd/{s}/status", qos=1)
        async with asyncio.timeout(10):
            async for m in c.messages:
                seen[m.topic.value.split("/")[1]] = m.payload.decode()
                if len(seen) == len(sites):
                    return seen
    return seen


async def test_every_site_goes_offline_when_the_daemon_dies(mosquitto, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.mqtt.bus_process", mosquitto.host, str(mosquitto.port),
         str(tmp_path / "f.sqlite")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert line.strip() == b"connected", proc.stderr.read() if proc.poll() else line
        assert await statuses(mosquitto, ["north", "south"]) == {"north": "online",
                                                                 "south": "online"}  # fmt: skip
        proc.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker must use the wills
        proc.wait(10)
        assert await statuses(mosquitto, ["north", "south"]) == {"north": "offline",
                                                                 "south": "offline"}  # fmt: skip
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def test_clean_stop_says_offline(bus):
    _, _, broker = bus
    assert (await first(broker, "flexd/home/status")).payload == b"online"
    task = next(t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "MqttBus.run")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await first(broker, "flexd/home/status")).payload == b"offline"


async def test_tariff_topic_and_its_home_assistant_sensors(bus):
    _, service, broker = bus
    view = {"slot_start": "2026-03-02T19:00:00Z", "band": "peak", "import_price_p": 30.5,
            "export_price_p": 15.0, "price_source": "tariff"}  # fmt: skip
    await service.emit(Event("tariff", "home", "home", view))
    m = await first(broker, "flexd/home/tariff")  # live or retained, whichever came first
    assert json.loads(m.payload) == view
    assert (await first(broker, "flexd/home/tariff")).retain  # a later subscriber gets it too
    for key in ("band", "import_price", "export_price"):
        cfg = json.loads((await first(broker, f"homeassistant/sensor/flexd_home/{key}/config")).payload)
        assert cfg["state_topic"] == "flexd/home/tariff" and key.split("_")[0] in cfg["value_template"]
    soc = json.loads((await first(broker, "homeassistant/sensor/flexd_home_charger/soc/config")).payload)
    assert soc["unit_of_measurement"] == "%"


async def test_bus_over_tls_with_the_brokers_ca(mosquitto_tls, tmp_path):
    import ssl

    class _Svc:  # the bus needs only sites, clock and listeners for a status round trip
        def __init__(self):
            self.sites = {"home": type("S", (), {"devices": {}, "plan": None})()}
            self.listeners = []
            self.clock = type("C", (), {"now": staticmethod(lambda: NOW)})()

    cfg = MqttConfig(enabled=True, host=mosquitto_tls.host, port=mosquitto_tls.port, tls=True,
                     tls_ca_file=mosquitto_tls.cafile, ha_discovery=False)  # fmt: skip
    b = MqttBus(_Svc(), cfg, ["home"], backoff_s=0.05, backoff_cap_s=0.2)  # type: ignore[arg-type]
    task = asyncio.create_task(b.run())
    try:
        await asyncio.wait_for(b.connected.wait(), 10)
        tls = ssl.create_default_context(cafile=str(mosquitto_tls.cafile))
        assert await statuses(mosquitto_tls, ["home"], tls=tls) == {"home": "online"}
        # A client that does not trust the broker's certificate is refused.
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(mosquitto_tls.host, mosquitto_tls.port,
                                      tls_context=ssl.create_default_context(), timeout=3):  # fmt: skip
                pass
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
