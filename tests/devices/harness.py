"""Adapter + simulator pairs for the shared inverter contract suite.

Each brand's ``tests/devices/harness_<brand>.py`` exposes ``async def make_pair(clock)``
returning a :class:`Pair`: the simulator on 127.0.0.1 port 0 over a SiteWorld on that clock,
and the adapter pointing at it with short timeouts so fault tests are quick.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from core.clock import ManualClock
from devices.base import BatteryMode, InverterAdapter
from devices.registry import BRANDS as BRAND_REGISTRY
from devices.registry import INVERTER
from simulator.faults import Faults
from simulator.world import SiteWorld

# Every inverter brand of the registry must have a harness: a brand without one fails here.
ALL_BRANDS = [name for name, b in BRAND_REGISTRY.items() if b.kind == INVERTER]
BRANDS = ALL_BRANDS


@dataclass
class Pair:
    brand: str
    adapter: InverterAdapter
    world: SiteWorld
    faults: Faults
    clock: ManualClock
    close: Callable[[], Awaitable[None]]
    supported_faults: frozenset[str]
    # Battery modes the brand can be commanded into; the contract skips the others.
    modes: frozenset[BatteryMode] = frozenset(BatteryMode)
    # False where the brand charges at its own rate whatever power is asked (Powerwall).
    power_settable: bool = True


async def make_pair(brand: str, clock: ManualClock) -> Pair:
    module = importlib.import_module(f"tests.devices.harness_{brand}")
    pair: Pair = await module.make_pair(clock)
    return pair


async def assemble(
    brand: str, clock: ManualClock, world: SiteWorld, faults: Faults, sim: Any,
    make_adapter: Callable[[int], InverterAdapter], supported_faults: Iterable[str],
    **kw: Any,
) -> Pair:  # fmt: skip
    """Start ``sim`` on a free port, point ``make_adapter(port)`` at it, and pair them."""
    port = await sim.start()
    adapter = make_adapter(port)

    async def close() -> None:
        await adapter.close()
        await sim.stop()

    return Pair(brand, adapter, world, faults, clock, close, frozenset(supported_faults), **kw)
