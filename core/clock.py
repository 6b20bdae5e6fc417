"""The one injected clock.

Nothing in flexd, devices or simulator reads the wall clock or sleeps except through a
:class:`Clock`. Production uses :class:`SystemClock`; the simulated-time daemon uses
:class:`ScaledClock` (simulated time runs ``speed`` times faster than real time, so real sockets
keep working); tests that step time by hand use :class:`ManualClock`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current instant, tz-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic scale in the clock's own time (simulated seconds if simulated)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of this clock's time."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Simulated time that starts at ``start`` and runs ``speed`` times faster than real time.

    ``anchor_unix``: the real (Unix) instant at which simulated time is ``start``, so that
    several processes share one timeline (a fleet's instances and its device simulators);
    without it, simulated time starts now."""

    def __init__(self, start: datetime, speed: float, anchor_unix: float | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self._start = start.astimezone(UTC)
        self._speed = speed
        self._real0 = time.monotonic()
        if anchor_unix is not None:  # the monotonic instant of the anchor, read once
            self._real0 -= time.time() - anchor_unix

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    def monotonic(self) -> float:
        return (time.monotonic() - self._real0) * self._speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)


class ManualClock:
    """Time moves only when a test calls :meth:`advance`; sleepers wake at their deadline."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._t0 = self._now
        self._waiters: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._t0).total_seconds()

    def set(self, instant: datetime) -> None:
        if instant < self._now:
            raise ValueError("a manual clock never goes backwards")
        self._now = instant.astimezone(UTC)
        self._wake()

    def advance(self, seconds: float) -> None:
        self.set(self._now + timedelta(seconds=seconds))

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._now + timedelta(seconds=seconds), fut))
        await fut

    def _wake(self) -> None:
        still: list[tuple[datetime, asyncio.Future[None]]] = []
        for deadline, fut in self._waiters:
            if fut.done():
                continue
            if deadline <= self._now:
                fut.set_result(None)
            else:
                still.append((deadline, fut))
        self._waiters = still
