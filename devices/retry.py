"""Timeouts for device calls, and the one jittered, capped exponential backoff (used by the
pollers, the price feed and the MQTT bus too)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from devices.errors import DeviceUnavailable

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Jittered backoff: attempt n (from 0) waits uniform(floor * d, d) seconds, where
    d = min(cap, base * 2**n). ``floor`` 0 is full jitter (peers spread out the most); a floor
    of 0.5 keeps at least half the step (a broker is not hammered right after it drops)."""

    base_s: float = 0.5
    cap_s: float = 30.0
    attempts: int = 4
    floor: float = 0.0

    def step(self, attempt: int) -> float:
        return min(self.cap_s, self.base_s * (2 ** min(attempt, 62)))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        r = rng or random
        d = self.step(attempt)
        return r.uniform(self.floor * d, d)


async def with_timeout(awaitable: Awaitable[T], timeout_s: float, what: str) -> T:
    """Run one device call under a timeout; a timeout becomes :class:`DeviceUnavailable`."""
    try:
        async with asyncio.timeout(timeout_s):
            return await awaitable
    except TimeoutError as exc:
        raise DeviceUnavailable(f"{what}: no answer within {timeout_s:g} s") from exc
