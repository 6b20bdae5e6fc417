"""An OpenEVSE-style charger on MQTT, driving :class:`simulator.ev.EV`.

Topic layout as the OpenEVSE WiFi firmware publishes it (docs/mqtt.md in
OpenEVSE/openevse_esp32_firmware), under a base topic such as ``openevse/<id>``:
``state`` (1 not connected, 2 connected, 3 charging, 254 sleeping, 255 disabled, 4..11 errors),
``amp`` (mA), ``pilot`` (A), ``power`` (W), ``session_energy`` (Wh), ``total_energy`` (kWh),
``vehicle`` (0/1), ``battery_level`` (%, only when the car reports it), ``claim`` and ``limit``
(JSON, ``{"state": "null"}`` when none). Commands: ``claim/set`` (JSON, or ``release``),
``override/set`` (same JSON, or ``clear``), ``limit/set`` (``{"type": "energy", "value": Wh}``
or ``clear``). Status is published on the injected clock every ``interval_s`` and at once after
each command, as the firmware does on change.

Faults (:class:`simulator.faults.Faults`): ``hang`` stops publishing and ignores commands (a
charger that stopped responding); ``ignore_commands`` rejects claims and overrides (the old
claim is published back, so a controller reading back sees it unchanged).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import Any

import aiomqtt

from core.clock import Clock, SystemClock
from simulator.ev import EV
from simulator.faults import Faults

MIN_A = 6  # J1772: the pilot cannot offer less than 6 A


class OpenEvseSimulator:
    def __init__(
        self, host: str, port: int, charger_id: str, ev: EV, clock: Clock, *,
        base_topic: str | None = None, max_current_a: int = 32, voltage: float = 230.0,
        interval_s: float = 30.0, faults: Faults | None = None,
        reconnect_s: float = 0.2,
    ) -> None:  # fmt: skip
        self.host, self.port = host, port
        self.base = base_topic or f"openevse/{charger_id}"
        self.ev, self.clock = ev, clock
        self.max_current_a = max_current_a
        self.voltage = voltage
        self.interval_s = interval_s
        self.faults = faults or Faults()
        self.reconnect_s = reconnect_s
        self.claim: dict[str, Any] = {}
        self.override: dict[str, Any] = {}
        self.limit: dict[str, Any] = {}
        self.total_kwh_base = 1234.5
        self._session_start_kwh = ev.delivered_kwh
        self._was_plugged = ev.plugged_in
        self._client: aiomqtt.Client | None = None
        self._stop = asyncio.Event()
        self.connected = asyncio.Event()
        self.commands_seen = 0

    # --- the charger's own logic -------------------------------------------------------------

    def _control(self) -> dict[str, Any]:
        # A manual override beats a service claim, as in the firmware's EvseManager.
        return self.override or self.claim

    def pilot_a(self) -> int:
        ctl = self._control()
        amps = self.max_current_a
        for key in ("charge_current", "max_current"):
            if isinstance(ctl.get(key), int | float):
                amps = min(amps, int(ctl[key]))
        return max(MIN_A, amps)

    def active(self) -> bool:
        if self._control().get("state") == "disabled":
            return False
        limit_wh = self.limit.get("value") if self.limit.get("type") == "energy" else None
        return not (isinstance(limit_wh, int | float) and self.session_wh() >= limit_wh)

    def session_wh(self) -> float:
        return (self.ev.delivered_kwh - self._session_start_kwh) * 1000.0

    def step(self) -> None:
        """Bring the car up to now and set what the pilot offers it."""
        self.ev.advance()
        if self.ev.plugged_in and not self._was_plugged:
            self._session_start_kwh = self.ev.delivered_kwh
        self._was_plugged = self.ev.plugged_in
        if self.limit.get("auto_release") and not self.ev.plugged_in:
            self.limit = {}
        offered = self.pilot_a() * self.voltage if self.active() else 0.0
        self.ev.set_offered(offered)

    def state_code(self) -> int:
        if not self.ev.plugged_in:
            return 1
        if not self.active():
            return 254
        return 3 if self.ev.draw_w() > 0 else 2

    def status(self) -> dict[str, str]:
        self.step()
        draw = self.ev.draw_w() if self.active() else 0.0
        out = {
            "state": str(self.state_code()),
            "amp": str(round(draw / self.voltage * 1000)),
            "pilot": str(self.pilot_a()),
            "voltage": f"{self.voltage:g}",
            "power": f"{draw:.0f}",
            "session_energy": f"{self.session_wh():.1f}",
            "total_energy": f"{self.total_kwh_base + self.ev.delivered_kwh:.3f}",
            "vehicle": "1" if self.ev.plugged_in else "0",
            "claim": json.dumps(self.claim or {"state": "null"}),
            "override": json.dumps(self.override or {"state": "null"}),
            "limit": json.dumps(self.limit or {"state": "null"}),
        }
        if self.ev.reports_soc and self.ev.plugged_in:
            out["battery_level"] = f"{self.ev.soc_pct:.1f}"
        return out

    def handle(self, sub: str, payload: str) -> None:
        """Apply one command from ``<base>/<sub>``."""
        self.commands_seen += 1
        self.step()
        if sub == "limit/set":
            self.limit = {} if payload == "clear" else _merge(self.limit, payload)
            return
        if self.faults.ignore_commands:
            return
        if sub == "claim/set":
            self.claim = {} if payload == "release" else _merge(self.claim, payload)
        elif sub == "override/set":
            self.override = {} if payload == "clear" else _merge(self.override, payload)
        self.step()

    # --- MQTT front-end ------------------------------------------------------------------------

    async def publish_status(self) -> None:
        client = self._client
        if client is None or self.faults.hang:
            return
        for key, value in self.status().items():
            await client.publish(f"{self.base}/{key}", value, retain=True)

    async def _periodic(self) -> None:
        while True:
            await self.publish_status()
            await self.clock.sleep(self.interval_s)

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            if self.faults.hang:
                continue
            sub = str(msg.topic)[len(self.base) + 1 :]
            payload = msg.payload.decode() if isinstance(msg.payload, bytes) else ""
            try:
                self.handle(sub, payload)
            except ValueError:
                continue  # the firmware ignores a payload it cannot parse
            await self.publish_status()

    async def _session(self, client: aiomqtt.Client) -> None:
        """Listen and publish until either fails or :meth:`stop`; a failed publish ends it too,
        because a client whose socket died can otherwise wait on its messages for ever."""
        await client.subscribe(f"{self.base}/+/set")
        self._client = client
        self.connected.set()
        tasks = [
            asyncio.create_task(self._listen(client)),
            asyncio.create_task(self._periodic(), name=f"openevse-sim {self.base}"),
            asyncio.create_task(self._stop.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._client = None
            self.connected.clear()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await t

    async def run(self) -> None:
        """Stay connected to the broker, reconnecting after it goes away, until :meth:`stop`."""
        while not self._stop.is_set():
            try:
                async with aiomqtt.Client(self.host, self.port, keepalive=5) as client:
                    await self._session(client)
            except aiomqtt.MqttError:
                pass
            if not self._stop.is_set():
                # Reconnect pacing is network time, not simulated time.
                await asyncio.sleep(self.reconnect_s)

    def stop(self) -> None:
        self._stop.set()


def _merge(current: dict[str, Any], payload: str) -> dict[str, Any]:
    data = json.loads(payload)
    if not isinstance(data, dict):
        raise ValueError("payload: expected a JSON object")
    merged = dict(current)
    for key, value in data.items():
        if value == "clear":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def run_cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator openevse")
    parser.add_argument("--broker", default="127.0.0.1:1883", help="MQTT broker host:port")
    parser.add_argument("--id", default="sim", help="charger id; base topic openevse/ID")
    parser.add_argument("--soc", type=float, default=30.0, help="the car's starting SoC in %%")
    parser.add_argument("--capacity-kwh", type=float, default=60.0)
    parser.add_argument("--interval-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    host, _, port_s = args.broker.rpartition(":")
    if not host or not port_s.isdigit():
        parser.error(f"--broker: expected host:port, got {args.broker!r}")
    clock = SystemClock()
    ev = EV(
        clock, capacity_kwh=args.capacity_kwh, soc_kwh=args.capacity_kwh * args.soc / 100,
        plugged_in=True,
    )  # fmt: skip
    sim = OpenEvseSimulator(host, int(port_s), args.id, ev, clock, interval_s=args.interval_s)
    print(f"openevse simulator: broker {host}:{port_s}, base topic {sim.base}", flush=True)
    await sim.run()
