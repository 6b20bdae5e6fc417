"""GivEnergy over its own Modbus framing on TCP: options and builder."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.fields import at_least, within
from devices.givenergy import registers as R
from devices.givenergy.adapter import GivEnergyAdapter
from devices.options import BatteryOptions, Endpoint, Resources

DEFAULT_PORT = 8899


@dataclass(frozen=True, slots=True)
class GivEnergyOptions(BatteryOptions):
    device_address: int = field(default=R.INVERTER_ADDRESS, metadata=within(0, 255))
    # A real dongle drops frames sent back to back (see the adapter); a simulator needs no gap.
    frame_gap_s: float = field(default=0.25, metadata=at_least(0.0))


async def build(opts: GivEnergyOptions, ep: Endpoint, res: Resources) -> GivEnergyAdapter:
    adapter = GivEnergyAdapter(
        ep.host, ep.port, res.clock, timeout_s=ep.timeout_s, device_address=opts.device_address,
        frame_gap_s=opts.frame_gap_s,
    )  # fmt: skip
    res.on_close(adapter.close)
    return adapter
