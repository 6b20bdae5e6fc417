"""The daemon's event bus: what changed (device state, plans, dispatches, rated slots, the
tariff now), pushed to whoever listens (the MQTT bus). A listener that fails is logged and the
others still hear the event; the control loop never waits on a broken listener's error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("flexd.events")


@dataclass(frozen=True, slots=True)
class Event:
    """Something clients may want pushed: kind is state | plan | dispatches | rated | tariff."""

    kind: str
    site: str
    subject: str  # device id, the meter id for "rated", the site id for "tariff"
    payload: Any


Listener = Callable[[Event], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self.listeners: list[Listener] = []
        self.failures = 0

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    async def emit(self, event: Event) -> None:
        for listener in list(self.listeners):
            try:
                await listener(event)
            except Exception as exc:
                self.failures += 1
                log.warning("listener_failed", kind=event.kind, site=event.site,
                            listener=getattr(listener, "__qualname__", repr(listener)),
                            error=f"{type(exc).__name__}: {exc}")  # fmt: skip
