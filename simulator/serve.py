"""What every ``python -m simulator NAME`` run does once its simulator is up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def serve_until_interrupted(stop: Callable[[], Awaitable[None]]) -> None:
    """Serve until interrupted (the run is cancelled), then stop the simulator."""
    try:
        await asyncio.Event().wait()
    finally:
        await stop()
