"""MQTT bus: device state, plans and dispatches out (retained), commands in, over aiomqtt.

The bus never stops the daemon: while the broker is away it keeps the latest retained payload of
every topic and republishes them all on reconnect, retrying with jittered, capped backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any

import aiomqtt

from flexd.config import MqttConfig
from flexd.preferences import InputError
from flexd.service import Conflict, Event, NotFound, Service

log = logging.getLogger("flexd.bus")

RETAINED_KINDS = {"state", "plan", "dispatches"}


def _dump(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), default=str)


class MqttBus:
    def __init__(
        self,
        service: Service,
        config: MqttConfig,
        site_ids: Iterable[str] | None = None,
        *,
        backoff_s: float = 0.5,
        backoff_cap_s: float = 30.0,
    ) -> None:
        self.service = service
        self.config = config
        self.sites = list(site_ids) if site_ids is not None else list(service.sites)
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self.retained: dict[str, str] = {}
        # Not-retained messages (rated half-hours) wait here while the broker is away; bounded
        # so a long outage cannot grow memory without limit.
        self.pending: deque[tuple[str, str]] = deque(maxlen=10_000)
        self.connected = asyncio.Event()
        self.connects = 0
        self._wake = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        service.listeners.append(self.on_event)

    # --- topics -----------------------------------------------------------------------------

    def _t(self, site: str, *parts: str) -> str:
        return "/".join((self.config.prefix, site, *parts))

    def status_topic(self, site: str) -> str:
        return self._t(site, "status")

    # --- events from the service ------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if event.site not in self.sites:
            return
        if event.kind in RETAINED_KINDS:
            self.retained[self._t(event.site, "devices", event.subject, event.kind)] = _dump(
                event.payload
            )
        elif event.kind == "rated":
            self.pending.append((self._t(event.site, "meters", event.subject, "rated"),
                                 _dump(event.payload)))  # fmt: skip
        self._wake.set()

    # --- the loop ---------------------------------------------------------------------------

    def _snapshot(self) -> None:
        """Current device views into the retained map, so a reconnect publishes fresh state."""
        now = self.service.clock.now()
        for sid in self.sites:
            site = self.service.sites[sid]
            for dev in site.devices.values():
                self.retained[self._t(sid, "devices", dev.id, "state")] = _dump(dev.view(now))
            if site.plan is not None:
                for dev_id in site.devices:
                    self.retained.setdefault(self._t(sid, "devices", dev_id, "plan"),
                                             _dump(site.plan))  # fmt: skip

    def _client_for(self) -> aiomqtt.Client:
        will = aiomqtt.Will(self.status_topic(self.sites[0]), "offline", qos=1, retain=True)
        tls = ssl.create_default_context() if self.config.tls else None
        return aiomqtt.Client(
            self.config.host,
            self.config.port,
            username=self.config.username,
            password=self.config.password,
            will=will,
            tls_context=tls,
            timeout=5,
        )

    async def run(self) -> None:
        """Forever: connect, publish, serve commands; on any broker failure back off and retry."""
        delay = self.backoff_s
        while True:
            try:
                async with self._client_for() as client:
                    self._client = client
                    delay = self.backoff_s
                    await self._session(client)
            except* aiomqtt.MqttError as eg:  # the session's TaskGroup wraps it in a group
                log.warning("mqtt broker unavailable: %s", eg.exceptions[0])
            finally:
                self._client = None
                self.connected.clear()
            # Wall-time backoff for a network peer, not domain time: the injected clock may be
            # simulated or frozen in tests.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(self.backoff_cap_s, delay * 2)

    async def _session(self, client: aiomqtt.Client) -> None:
        for sid in self.sites:
            await client.publish(self.status_topic(sid), "online", qos=1, retain=True)
            await client.subscribe(self._t(sid, "devices", "+", "bump-charge", "set"), qos=1)
            await client.subscribe(self._t(sid, "devices", "+", "preferences", "set"), qos=1)
            if self.config.ha_discovery:
                await self._discovery(client, sid)
        self._snapshot()
        for topic, payload in list(self.retained.items()):
            await client.publish(topic, payload, qos=1, retain=True)
        self.connects += 1
        self.connected.set()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._publisher(client))
            tg.create_task(self._commands(client))

    async def _publisher(self, client: aiomqtt.Client) -> None:
        published: dict[str, str] = {}
        while True:
            await self._wake.wait()
            self._wake.clear()
            for topic, payload in list(self.retained.items()):
                if published.get(topic) != payload:
                    await client.publish(topic, payload, qos=1, retain=True)
                    published[topic] = payload
            while self.pending:
                topic, payload = self.pending[0]
                await client.publish(topic, payload, qos=1, retain=False)
                self.pending.popleft()

    async def _commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            parts = message.topic.value.split("/")
            # prefix/site/devices/<id>/<command>/set
            if len(parts) != 6 or parts[2] != "devices" or parts[1] not in self.sites:
                continue
            site, device_id, command = parts[1], parts[3], parts[4]
            try:
                await self._command(device_id, command, message.payload)
            except aiomqtt.MqttError:
                raise
            except Exception as e:  # a bad command must never end the loop
                await self._answer(client, site, device_id, command, e)

    async def _command(self, device_id: str, command: str, raw: Any) -> None:
        text = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw or "")
        try:
            body = json.loads(text) if text.strip() else {}
        except ValueError as e:
            raise InputError("payload", f"not valid JSON: {e}") from None
        if self.service.site_of(device_id).config.id not in self.sites:
            raise NotFound(f"device {device_id}")
        if command == "bump-charge":
            if not isinstance(body, dict):
                raise InputError("payload", "must be a JSON object")
            target = body.get("target_soc_pct")
            duration = body.get("duration_minutes")
            key = body.get("idempotency_key")
            if target is not None and (
                isinstance(target, bool) or not isinstance(target, int | float)
            ):
                raise InputError("target_soc_pct", "must be a number")
            if duration is not None and (
                isinstance(duration, bool) or not isinstance(duration, int)
            ):
                raise InputError("duration_minutes", "must be an integer")
            if key is not None and not isinstance(key, str):
                raise InputError("idempotency_key", "must be a string")
            await self.service.bump_charge(
                device_id, target_soc_pct=target, duration_minutes=duration, idempotency_key=key
            )
        elif command == "preferences":
            await self.service.set_preferences(device_id, body)
        else:
            raise InputError("topic", f"unknown command {command!r}")

    async def _answer(
        self, client: aiomqtt.Client, site: str, device_id: str, command: str, e: Exception
    ) -> None:
        doc: dict[str, Any]
        if isinstance(e, InputError):
            doc = {"error": "invalid", "detail": e.reason, "field": e.field}
        elif isinstance(e, Conflict):
            doc = {"error": e.code, "detail": e.detail, "field": None}
        elif isinstance(e, NotFound):
            doc = {"error": "not-found", "detail": str(e), "field": None}
        else:
            log.exception("mqtt command %s for %s failed", command, device_id)
            doc = {"error": "internal", "detail": type(e).__name__, "field": None}
        log.warning("mqtt command %s for %s refused: %s", command, device_id, doc["detail"])
        doc["command"] = command
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(self._t(site, "devices", device_id, "error"), _dump(doc), qos=1)

    async def _discovery(self, client: aiomqtt.Client, site: str) -> None:
        """Home Assistant MQTT discovery: the main sensors and a bump-charge button."""
        for dev in self.service.sites[site].devices.values():
            base = self._t(site, "devices", dev.id)
            node = f"flexd_{site}_{dev.id}".replace("-", "_")
            device = {"identifiers": [node], "name": f"flexd {dev.id}", "manufacturer": "flexd"}
            avail = {"availability_topic": self.status_topic(site)}
            sensors: list[tuple[str, str, dict[str, Any]]] = [
                ("power", "{{ value_json.state.charging_w if value_json.kind == 'charger' "
                 "else value_json.state.battery_w }}",
                 {"unit_of_measurement": "W", "device_class": "power"}),
                ("next_dispatch", "{{ (value_json | selectattr('status','eq','planned') | list "
                 "| first | default({})).get('start') }}", {"device_class": "timestamp"}),
            ]  # fmt: skip
            if dev.kind == "charger":
                soc = {"unit_of_measurement": "%", "device_class": "battery"}
                sensors.append(("soc", "{{ value_json.soc_pct }}", soc))
            for key, template, extra in sensors:
                topic = f"{base}/dispatches" if key == "next_dispatch" else f"{base}/state"
                cfg = {"name": key.replace("_", " "), "unique_id": f"{node}_{key}",
                       "state_topic": topic, "value_template": template, "device": device,
                       **avail, **extra}  # fmt: skip
                await client.publish(f"homeassistant/sensor/{node}/{key}/config", _dump(cfg),
                                     qos=1, retain=True)  # fmt: skip
            if dev.kind == "charger":
                cfg = {"name": "bump charge", "unique_id": f"{node}_bump",
                       "command_topic": f"{base}/bump-charge/set", "payload_press": "{}",
                       "device": device, **avail}  # fmt: skip
                await client.publish(f"homeassistant/button/{node}/bump/config", _dump(cfg),
                                     qos=1, retain=True)  # fmt: skip
