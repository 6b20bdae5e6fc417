"""One poller per device: reads state on its interval, keeps the last good state and its age,
counts failures (stale, then offline), and never lets one device's failure reach another."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import structlog

from core.clock import Clock
from devices.base import ChargerState, InverterState
from devices.errors import AuthenticationFailed, DeviceError, NotSupported
from devices.retry import Backoff, with_timeout
from flexd.control.runtime import DeviceRuntime
from flexd.obs.metrics import Metrics

log = structlog.get_logger("flexd.control.poller")
OnState = Callable[[DeviceRuntime], Awaitable[None]]


async def poll_once(dev: DeviceRuntime, clock: Clock, metrics: Metrics) -> bool:
    """One read of one device; returns True if it produced a fresh state."""
    adapter = dev.adapter
    if adapter is None:
        return False
    metrics.device_polls.inc(device=dev.id)
    read: Awaitable[InverterState | ChargerState] = adapter.read_state()
    try:
        state = await with_timeout(read, dev.config.timeout_s * 2, dev.id)
    except (DeviceError, OSError) as exc:
        dev.errors += 1
        dev.consecutive_failures += 1
        dev.last_error = f"{type(exc).__name__}: {exc}"
        metrics.device_poll_errors.inc(device=dev.id, error=type(exc).__name__)
        if dev.consecutive_failures in (1, 5) or isinstance(exc, AuthenticationFailed):
            log.warning("poll_failed", device=dev.id, error=dev.last_error,
                        failures=dev.consecutive_failures)  # fmt: skip
        return False
    dev.state = state
    dev.last_ok = clock.now()
    if dev.consecutive_failures >= 2:
        log.info("device_recovered", device=dev.id, after_failures=dev.consecutive_failures)
    dev.consecutive_failures = 0
    dev.last_error = None
    return True


async def run_poller(
    dev: DeviceRuntime, clock: Clock, metrics: Metrics, on_state: OnState,
    stop: asyncio.Event | None = None,
) -> None:  # fmt: skip
    """Poll until ``stop``. A failure backs off (jittered, capped at 4 polls) but never stops.

    The loop also checks ``stop`` itself: some device libraries swallow a task cancellation
    inside their own I/O, and a poller must still end at shutdown."""
    # Spread the first polls so a fleet does not hit the network in one burst.
    await clock.sleep(random.uniform(0, min(1.0, dev.config.poll_seconds / 10)))
    while stop is None or not stop.is_set():
        try:
            fresh = await poll_once(dev, clock, metrics)
            if fresh:
                await on_state(dev)
        except NotSupported:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a callback must not kill the poller
            log.exception("poller_error", device=dev.id, error=str(exc))
        period = dev.config.poll_seconds
        if dev.consecutive_failures:
            # A failing device is polled less often (up to 4 periods apart), jittered so a
            # fleet whose network blipped does not come back in one burst.
            slower = Backoff(base_s=period / 2, cap_s=period * 3)
            period += slower.delay(dev.consecutive_failures - 1)
        await clock.sleep(period)


async def run_vehicle_poller(
    dev: DeviceRuntime, clock: Clock, on_soc: Callable[[DeviceRuntime], None],
    stop: asyncio.Event,
) -> None:  # fmt: skip
    """Read a charger's car through its cloud API, rarely: such APIs are rate-limited and a
    read may wake the car. A failure keeps the last reading (the SoC chain ages it out)."""
    period = dev.config.options.vehicle_poll_seconds
    while not stop.is_set():
        try:
            state = await dev.vehicle.read_vehicle()
            dev.vehicle_soc = state.soc_reading()
            on_soc(dev)
        except (DeviceError, OSError, ValueError) as exc:
            log.warning("vehicle_read_failed", device=dev.id, error=f"{type(exc).__name__}: {exc}")
        await clock.sleep(period)
