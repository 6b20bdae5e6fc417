"""Timeouts and jittered, capped exponential backoff for device calls."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from devices.errors import DeviceUnavailable

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Full-jitter backoff: attempt n waits uniform(0, min(cap, base * 2**n)) seconds."""

    base_s: float = 0.5
    cap_s: float = 30.0
    attempts: int = 4

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        r = rng or random
        return r.uniform(0.0, min(self.cap_s, self.base_s * (2**attempt)))


async def with_timeout(awaitable: Awaitable[T], timeout_s: float, what: str) -> T:
    """Run one device call under a timeout; a timeout becomes :class:`DeviceUnavailable`."""
    try:
        async with asyncio.timeout(timeout_s):
            return await awaitable
    except TimeoutError as exc:
        raise DeviceUnavailable(f"{what}: no answer within {timeout_s:g} s") from exc


async def retry_unavailable(
    call: Callable[[], Awaitable[T]],
    backoff: Backoff,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Retry ``call`` on :class:`DeviceUnavailable` only; every other error passes straight up."""
    for attempt in range(backoff.attempts):
        try:
            return await call()
        except DeviceUnavailable:
            if attempt == backoff.attempts - 1:
                raise
            await sleep(backoff.delay(attempt))
    raise AssertionError("unreachable")
