"""MQTT bus: device state, plans and dispatches out (retained), commands in, over aiomqtt.

The bus never stops the daemon: while the broker is away it keeps the latest retained payload of
every topic and republishes them all on reconnect, retrying with jittered, capped backoff.

Every site's ``<prefix>/<site>/status`` is "online" while the daemon runs and "offline" when it
stops or dies. MQTT gives one Last Will per connection, so the main connection carries the first
site's will and one small extra connection per further site carries that site's: if the daemon
dies, the broker sees every connection drop and publishes every will. A clean stop publishes
"offline" for every site itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.retry import Backoff
from flexd.config import MqttConfig
from flexd.control.preferences import InputError
from flexd.service import Conflict, Event, NotFound, Service

log = structlog.get_logger("flexd.mqtt.bus")

RETAINED_KINDS = {"state", "plan", "dispatches"}
SITE_KINDS = {"tariff"}  # retained, one per site: <prefix>/<site>/<kind>
# How long the broker keeps the command session (and queues commands) while flexd is away.
SESSION_EXPIRY_S = 3600


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
        elif event.kind in SITE_KINDS:
            self.retained[self._t(event.site, event.kind)] = _dump(event.payload)
        elif event.kind == "rated":
            self.pending.append((self._t(event.site, "meters", event.subject, "rated"),
                                 _dump(event.payload)))  # fmt: skip
        self._wake.set()

    # --- the loop ---------------------------------------------------------------------------

    def _snapshot(self) -> None:
        """Current device views into the retained map, so a reconnect publishes fresh state.
        (Plans arrive as events already cut to the next 24 h; the site's full plan is never
        published.)"""
        now = self.service.clock.now()
        for sid in self.sites:
            for dev in self.service.sites[sid].devices.values():
                self.retained[self._t(sid, "devices", dev.id, "state")] = _dump(dev.view(now))

    def _tls(self) -> ssl.SSLContext | None:
        if not self.config.tls:
            return None
        ca = self.config.tls_ca_file
        return ssl.create_default_context(cafile=str(ca) if ca is not None else None)

    def _client_for(self, site: str, suffix: str = "") -> aiomqtt.Client:
        """The command client (no suffix) keeps a persistent MQTT v5 session under a stable
        identifier: the broker holds its QoS 1 subscriptions and queues the commands published
        while it is away (a restart, a reconnect), for up to SESSION_EXPIRY_S. Will-holders
        need no session."""
        will = aiomqtt.Will(self.status_topic(site), "offline", qos=1, retain=True)
        persistent = suffix == ""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S if persistent else 0
        ident = f"{self.config.prefix}-{site}" if persistent else (
            f"{self.config.prefix}-{site}{suffix}-{random.getrandbits(32):08x}")
        return aiomqtt.Client(
            self.config.host,
            self.config.port,
            identifier=ident,
            username=self.config.username,
            password=self.config.password,
            will=will,
            tls_context=self._tls(),
            timeout=5,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=not persistent,
            properties=props,
        )

    async def run(self) -> None:
        """Forever: connect, publish, serve commands; on any broker failure back off and retry."""
        backoff = Backoff(base_s=self.backoff_s, cap_s=self.backoff_cap_s, floor=0.5)
        failures = 0
        while True:
            try:
                async with contextlib.AsyncExitStack() as stack:
                    client = await stack.enter_async_context(self._client_for(self.sites[0]))
                    # One will-holder connection per further site (see the module docstring).
                    for sid in self.sites[1:]:
                        await stack.enter_async_context(self._client_for(sid, "-will"))
                    self._client = client
                    failures = 0
                    try:
                        await self._session(client)
                    except asyncio.CancelledError:
                        await self._say_offline(client)
                        raise
            except* aiomqtt.MqttError as eg:  # the session's TaskGroup wraps it in a group
                log.warning("mqtt_broker_unavailable", error=str(eg.exceptions[0]))
            finally:
                self._client = None
                self.connected.clear()
            # Wall-time backoff for a network peer, not domain time: the injected clock may be
            # simulated or frozen in tests.
            await asyncio.sleep(backoff.delay(failures))
            failures += 1

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """A clean stop: every site offline now (the wills only fire on a dropped link)."""
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(2):
                for sid in self.sites:
                    await client.publish(self.status_topic(sid), "offline", qos=1, retain=True)

    async def _session(self, client: aiomqtt.Client) -> None:
        # Subscribe before saying "online": a client that waits for online may command at once.
        for sid in self.sites:
            await client.subscribe(self._t(sid, "devices", "+", "bump-charge", "set"), qos=1)
            await client.subscribe(self._t(sid, "devices", "+", "preferences", "set"), qos=1)
        for sid in self.sites:
            await client.publish(self.status_topic(sid), "online", qos=1, retain=True)
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
            log.exception("mqtt_command_failed", command=command, device=device_id)
            doc = {"error": "internal", "detail": type(e).__name__, "field": None}
        log.warning("mqtt_command_refused", command=command, device=device_id,
                    detail=doc["detail"])  # fmt: skip
        doc["command"] = command
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(self._t(site, "devices", device_id, "error"), _dump(doc), qos=1)

    async def _discovery(self, client: aiomqtt.Client, site: str) -> None:
        """Home Assistant MQTT discovery: the main sensors and a bump-charge button."""
        node = f"flexd_{site}".replace("-", "_")
        device = {"identifiers": [node], "name": f"flexd {site}", "manufacturer": "flexd"}
        price = {"unit_of_measurement": "p/kWh", "state_class": "measurement"}
        for key, template, extra in (
            ("band", "{{ value_json.band }}", {"icon": "mdi:clock-outline"}),
            ("import_price", "{{ value_json.import_price_p }}", price),
            ("export_price", "{{ value_json.export_price_p }}", price),
        ):
            cfg = {"name": key.replace("_", " "), "unique_id": f"{node}_{key}",
                   "state_topic": self._t(site, "tariff"), "value_template": template,
                   "device": device, "availability_topic": self.status_topic(site),
                   **extra}  # fmt: skip
            await client.publish(f"homeassistant/sensor/{node}/{key}/config", _dump(cfg),
                                 qos=1, retain=True)  # fmt: skip
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
            soc = {"unit_of_measurement": "%", "device_class": "battery"}
            if dev.kind == "charger":
                sensors.append(("soc", "{{ value_json.soc_pct }}", soc))
            else:
                sensors.append(("soc", "{{ value_json.state.battery_soc_pct }}", soc))
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
