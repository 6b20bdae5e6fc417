"""SolarEdge StorEdge over Modbus TCP: options and builder."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.fields import within
from devices.options import BatteryOptions, Endpoint, Resources
from devices.solaredge.adapter import SolarEdgeAdapter

DEFAULT_PORT = 1502


@dataclass(frozen=True, slots=True)
class SolarEdgeOptions(BatteryOptions):
    unit: int = field(default=1, metadata=within(0, 247))  # Modbus unit id


async def build(opts: SolarEdgeOptions, ep: Endpoint, res: Resources) -> SolarEdgeAdapter:
    adapter = SolarEdgeAdapter(ep.host, ep.port, res.clock, unit=opts.unit, timeout_s=ep.timeout_s)
    res.on_close(adapter.close)
    return adapter
