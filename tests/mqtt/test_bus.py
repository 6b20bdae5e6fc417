"""The MQTT bus against a real private mosquitto: retained state, commands, broker restarts."""

import asyncio
import contextlib
import json

import aiomqtt
import pytest

from devices.base import ChargerState, ChargerStatus
from flexd.mqtt.bus import MqttBus
from tests.mqtt.helpers import NOW, STATE, first


async def test_late_subscriber_sees_retained_state_and_status(bus):
    _, _, broker = bus
    m = await first(broker, STATE)
    assert m.retain and json.loads(m.payload)["soc_pct"] == 40.0
    assert (await first(broker, "flexd/home/status")).payload == b"online"
    disc = await first(broker, "homeassistant/button/flexd_home_charger/bump/config")
    assert json.loads(disc.payload)["command_topic"] == "flexd/home/devices/charger/bump-charge/set"


async def test_bump_over_mqtt_creates_boost(bus):
    _, service, broker = bus
    topic = "flexd/home/devices/charger/dispatches"
    m = await first(broker, topic, ("flexd/home/devices/charger/bump-charge/set", "{}"))
    assert [d["type"] for d in json.loads(m.payload)] == ["BOOST"]
    assert len(await service.storage.dispatches(device_id="charger", kind="boost")) == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [("{nope", "payload"), ('{"target_soc_pct": "x"}', "target_soc_pct"), ("[]", "payload")],
)
async def test_malformed_command_answered_on_error_topic(bus, payload, field):
    b, _, broker = bus
    err = "flexd/home/devices/charger/error"
    m = await first(broker, err, ("flexd/home/devices/charger/bump-charge/set", payload))
    assert json.loads(m.payload)["field"] == field
    assert b.connected.is_set() and b.connects == 1  # the loop carried on


async def test_conflict_answered_with_reason(bus):
    _, service, broker = bus
    service.device("charger").state = ChargerState(
        NOW, False, 0.0, 0.0, 10.0, ChargerStatus.AVAILABLE
    )
    err = "flexd/home/devices/charger/error"
    m = await first(broker, err, ("flexd/home/devices/charger/bump-charge/set", ""))
    assert json.loads(m.payload)["error"] == "not-plugged-in"


async def test_broker_restart_bus_carries_on_and_republishes(bus):
    b, service, broker = bus
    broker.stop()
    async with asyncio.timeout(10):
        while b.connected.is_set():
            await asyncio.sleep(0.02)
    # state changes while the broker is away are kept and published after the reconnect
    await service.bump_charge("charger")
    broker.start()  # persistence is off: the restarted broker has no retained messages
    await asyncio.wait_for(b.connected.wait(), 15)
    assert b.connects == 2
    m = await first(broker, "flexd/home/devices/charger/dispatches")
    assert [d["type"] for d in json.loads(m.payload)] == ["BOOST"]
    assert (await first(broker, STATE)).retain


async def test_commands_sent_while_the_daemon_is_away_are_applied_once(bus):
    # 100 commands published (QoS 1) while the bus is disconnected, then it comes back: the
    # broker kept its persistent session and queued them; each is applied exactly once, in order.
    b, service, broker = bus
    applied = []
    real = service.set_preferences

    async def counting(device_id, doc):
        applied.append(doc["target_soc_pct"])
        return await real(device_id, doc)

    service.set_preferences = counting
    b.task_for_test.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await b.task_for_test
    async with aiomqtt.Client(broker.host, broker.port) as c:
        for i in range(100):
            await c.publish("flexd/home/devices/charger/preferences/set",
                            json.dumps({"target_soc_pct": 20 + i * 0.5}), qos=1)  # fmt: skip
    again = MqttBus(service, b.config, backoff_s=0.05, backoff_cap_s=0.2)
    task = asyncio.create_task(again.run())
    try:
        async with asyncio.timeout(20):
            while len(applied) < 100:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # nothing more arrives: no duplicates
        assert applied == [20 + i * 0.5 for i in range(100)]
        assert service.preferences("charger").target_soc_pct == 69.5
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
