"""An OpenEVSE charger on MQTT, as a :class:`devices.base.ChargerAdapter`.

The charger publishes its status under a base topic (``openevse/<id>`` here; the firmware's
default is ``openevse-xxxx``): ``state``, ``amp`` (mA), ``pilot`` (A), ``power`` (W),
``session_energy`` (Wh), ``total_energy`` (kWh), ``vehicle`` (0/1), ``battery_level`` (%, when
a vehicle integration feeds it) and the current ``claim`` as JSON. Control is by a service claim
on ``<base>/claim/set`` (``{"state": "active"|"disabled", "charge_current": A}``), which the
firmware echoes back on ``<base>/claim``; an apply is honoured when that echo matches.

OpenEVSE has no charging-profile concept. :class:`ChargeProfile` is executed here: the claim for
the period containing now is sent at once, and a small task on the injected clock sends the
claim for each later period boundary (active at the period's current, or disabled between
periods); after a broker reconnect the claim due at that moment is sent again, in case a
boundary passed during the outage. A later command, or :meth:`close`, cancels it. The result
of each scheduled claim is kept in :attr:`OpenEvseAdapter.scheduled_results` for the poller.

Reconnect pacing after a broker loss is network time, not plan time, so it takes its own
``sleep`` (asyncio's by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

import aiomqtt

from core.clock import Clock
from devices.base import (
    ChargeNow,
    ChargeProfile,
    ChargerCommand,
    ChargerState,
    ChargerStatus,
    CommandResult,
    SocSource,
    StopCharging,
)
from devices.errors import BadPayload, DeviceUnavailable, NotSupported

MIN_A = 6  # J1772: a pilot below 6 A means "do not charge"


def status_from(code: int, plugged_in: bool, claim_active: bool) -> ChargerStatus:
    """Map an OpenEVSE state code onto the OCPP-shaped status every charger reports."""
    if code == 1:
        return ChargerStatus.AVAILABLE
    if code == 2:
        # Connected, not charging: the car is not taking what the charger offers.
        return ChargerStatus.SUSPENDED_EV if claim_active else ChargerStatus.PREPARING
    if code == 3:
        return ChargerStatus.CHARGING
    if code in (254, 255):
        return ChargerStatus.SUSPENDED_EVSE if plugged_in else ChargerStatus.AVAILABLE
    if 4 <= code <= 11:
        return ChargerStatus.FAULTED
    return ChargerStatus.UNAVAILABLE


def amps_for(power_w: float, voltage: float, phases: int, max_a: int) -> int:
    """Whole amps for a power, capped at ``max_a`` and raised to the 6 A pilot minimum."""
    amps = math.floor(power_w / (voltage * phases) + 1e-9)
    return max(MIN_A, min(max_a, amps))


def claim_at(
    profile: ChargeProfile, at: datetime, voltage: float, phases: int, max_a: int
) -> dict[str, Any]:
    """The claim that carries out ``profile`` at instant ``at``."""
    for p in profile.periods:
        if p.start <= at < p.end and p.power_w > 0:
            amps = amps_for(p.power_w, voltage, phases, max_a)
            return {"state": "active", "charge_current": amps}
    return {"state": "disabled"}


def _number(values: Mapping[str, str], key: str) -> float | None:
    raw = values.get(key)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise BadPayload(f"{key}: not a number: {raw!r}") from exc


class OpenEvseAdapter:
    brand: ClassVar[str] = "openevse"

    def __init__(
        self, host: str, port: int, charger_id: str, clock: Clock, *,
        base_topic: str | None = None, voltage: float = 230.0, phases: int = 1,
        max_current_a: int = 32, timeout_s: float = 5.0, reconnect_s: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:  # fmt: skip
        if phases not in (1, 3):
            raise ValueError("phases: must be 1 or 3")
        if max_current_a < MIN_A:
            raise ValueError(f"max_current_a: must be >= {MIN_A}")
        self.host, self.port = host, port
        self.base = base_topic or f"openevse/{charger_id}"
        self.clock = clock
        self.voltage, self.phases, self.max_current_a = voltage, phases, max_current_a
        self.timeout_s = timeout_s
        self.reconnect_s = reconnect_s
        self._sleep = sleep
        self.values: dict[str, str] = {}
        self.received_at: dict[str, datetime] = {}
        self.scheduled_results: list[CommandResult] = []
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._client: aiomqtt.Client | None = None
        self._update = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._profile_task: asyncio.Task[None] | None = None
        self._profile: ChargeProfile | None = None
        self._resend_task: asyncio.Task[None] | None = None
        self._state_count = 0
        self._broken = asyncio.Event()
        self._closed = False

    async def start(self) -> None:
        """Start the connection loop (it reconnects by itself) and wait for the first connect."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name=f"openevse {self.base}")
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.connected.wait()
        except TimeoutError as exc:
            raise DeviceUnavailable(f"broker {self.host}:{self.port}: no connection") from exc

    async def __aenter__(self) -> OpenEvseAdapter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- connection ---------------------------------------------------------------------------

    async def _run(self) -> None:
        first = True
        while not self._closed:
            try:
                async with aiomqtt.Client(self.host, self.port, keepalive=5) as client:
                    await client.subscribe(f"{self.base}/#")
                    self._client = client
                    self._broken = asyncio.Event()
                    if not first:
                        self.reconnects += 1
                        self._after_reconnect()
                    first = False
                    self.connected.set()
                    await self._listen(client)
            except aiomqtt.MqttError:
                pass
            finally:
                self._client = None
                self.connected.clear()
            if not self._closed:
                await self._sleep(self.reconnect_s)

    async def _listen(self, client: aiomqtt.Client) -> None:
        # A publish that fails marks the connection broken: a client whose socket died can
        # otherwise wait on its messages for ever, so we leave and reconnect.
        listen = asyncio.create_task(self._messages(client))
        broken = asyncio.create_task(self._broken.wait())
        try:
            await asyncio.wait((listen, broken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (listen, broken):
                t.cancel()
            for t in (listen, broken):
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await t

    async def _messages(self, client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            self._receive(str(msg.topic), msg.payload)

    def _after_reconnect(self) -> None:
        # The charger keeps its claim across a broker outage, but a period boundary may have
        # passed while we could not publish: send the claim due now.
        if self._profile is not None:
            self._resend_task = asyncio.create_task(
                self._resend(self._profile, self._state_count), name=f"openevse resend {self.base}"
            )

    async def _resend(self, profile: ChargeProfile, heard: int) -> None:
        # Wait to hear the charger first: it may reconnect after us, and a claim published
        # before it subscribes is lost (commands are not retained).
        try:
            async with asyncio.timeout(self.timeout_s * 5):
                while self._state_count == heard:
                    await self._update.wait()
            claim = self._profile_claim(profile, self.clock.now())
            result = await self._claim_and_check(profile, claim)
        except TimeoutError:
            result = CommandResult(profile, False, "re-send after reconnect: charger silent")
        except DeviceUnavailable as exc:
            result = CommandResult(profile, False, f"re-send after reconnect: {exc}")
        self.scheduled_results.append(result)

    def _receive(self, topic: str, payload: object) -> None:
        key = topic[len(self.base) + 1 :]
        if key.endswith("/set") or not isinstance(payload, bytes | bytearray):
            return  # our own commands, echoed by the broker
        self.values[key] = bytes(payload).decode(errors="replace")
        if key == "state":
            self._state_count += 1
        self.received_at[key] = self.clock.now()
        self._update.set()
        self._update = asyncio.Event()

    # --- state --------------------------------------------------------------------------------

    async def read_state(self) -> ChargerState:
        if not self.connected.is_set():
            raise DeviceUnavailable(f"{self.base}: not connected to the broker")
        values = dict(self.values)
        code = _number(values, "state")
        at = self.received_at.get("state")
        if code is None or at is None:
            raise DeviceUnavailable(f"{self.base}: no status received yet")
        vehicle = _number(values, "vehicle")
        plugged = bool(vehicle) if vehicle is not None else int(code) in (2, 3)
        power = _number(values, "power")
        if power is None:
            amp_ma = _number(values, "amp") or 0.0
            power = amp_ma / 1000.0 * self.voltage * self.phases
        soc = _number(values, "battery_level")
        if soc is not None and not 0 <= soc <= 100:
            raise BadPayload(f"battery_level: {soc} is outside 0..100")
        return ChargerState(
            measured_at=at,
            plugged_in=plugged,
            charging_w=power if int(code) == 3 else 0.0,
            session_kwh=(_number(values, "session_energy") or 0.0) / 1000.0,
            energy_register_kwh=_number(values, "total_energy") or 0.0,
            status=status_from(int(code), plugged, self._claim().get("state") != "disabled"),
            soc_pct=soc,
            soc_source=SocSource.CHARGER if soc is not None else SocSource.UNKNOWN,
            soc_measured_at=self.received_at.get("battery_level") if soc is not None else None,
            raw=values,
        )

    def _claim(self) -> dict[str, Any]:
        try:
            data = json.loads(self.values.get("claim", "{}"))
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    # --- commands -----------------------------------------------------------------------------

    async def apply(self, command: ChargerCommand) -> CommandResult:
        self._cancel_profile()
        if isinstance(command, ChargeNow):
            power = command.power_w if command.power_w is not None else math.inf
            amps = (
                self.max_current_a
                if math.isinf(power)
                else amps_for(power, self.voltage, self.phases, self.max_current_a)
            )
            return await self._claim_and_check(command, {"state": "active", "charge_current": amps})
        if isinstance(command, StopCharging):
            return await self._claim_and_check(command, {"state": "disabled"})
        if isinstance(command, ChargeProfile):
            claim = self._profile_claim(command, self.clock.now())
            result = await self._claim_and_check(command, claim)
            self._profile = command
            self._profile_task = asyncio.create_task(
                self._follow(command), name=f"openevse profile {self.base}"
            )
            return result
        raise NotSupported(f"{type(command).__name__}: not a charger command")

    def _profile_claim(self, profile: ChargeProfile, at: datetime) -> dict[str, Any]:
        return claim_at(profile, at, self.voltage, self.phases, self.max_current_a)

    async def _follow(self, profile: ChargeProfile) -> None:
        """Send the claim due at each later period boundary, on the injected clock."""
        bounds = sorted({t for p in profile.periods for t in (p.start, p.end)})
        for b in bounds:
            wait_s = (b - self.clock.now()).total_seconds()
            if wait_s <= 0:
                continue
            await self.clock.sleep(wait_s)
            claim = self._profile_claim(profile, b)
            try:
                result = await self._claim_and_check(profile, claim)
            except DeviceUnavailable as exc:
                result = CommandResult(profile, False, f"at {b.isoformat()}: {exc}")
            self.scheduled_results.append(result)

    def _cancel_profile(self) -> None:
        self._profile = None
        if self._resend_task is not None:
            self._resend_task.cancel()
            self._resend_task = None
        if self._profile_task is not None:
            self._profile_task.cancel()
            self._profile_task = None

    async def _claim_and_check(self, command: object, claim: dict[str, Any]) -> CommandResult:
        client = self._client
        if client is None:
            raise DeviceUnavailable(f"{self.base}: not connected to the broker")
        # Clear a current left over from an earlier claim, so "disabled" reads back exactly.
        body = {"charge_current": "clear"} | claim
        try:
            await client.publish(f"{self.base}/claim/set", json.dumps(body))
        except aiomqtt.MqttError as exc:
            self._broken.set()
            raise DeviceUnavailable(f"{self.base}: publish failed: {exc}") from exc
        try:
            async with asyncio.timeout(self.timeout_s):
                while not _matches(self._claim(), claim):
                    await self._update.wait()
        except TimeoutError:
            return CommandResult(
                command, False, f"charger did not take claim {claim}: reads back {self._claim()}"
            )
        return CommandResult(command, True)

    async def close(self) -> None:
        self._closed = True
        self._cancel_profile()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None


def _matches(got: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    if got.get("state") != want.get("state"):
        return False
    return got.get("charge_current") == want.get("charge_current")
