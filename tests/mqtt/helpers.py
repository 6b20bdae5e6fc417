"""What the MQTT tests share: the instant, a topic, and a fresh subscriber's first message."""

import asyncio
from datetime import UTC, datetime

import aiomqtt

NOW = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)
STATE = "flexd/home/devices/charger/state"


async def first(broker, topic, publish=None):
    """The first message on topic, seen by a fresh subscriber (so only retained or new ones)."""
    async with aiomqtt.Client(broker.host, broker.port) as c:
        await c.subscribe(topic, qos=1)
        if publish is not None:
            await c.publish(*publish, qos=1)
        async with asyncio.timeout(10):
            async for m in c.messages:
                return m
