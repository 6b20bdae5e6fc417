"""OCPP 1.6J chargers: flexd is the central system they connect to. Options and builder."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.fields import within
from devices.ocpp.adapter import OcppChargerAdapter
from devices.ocpp.csms import CentralSystem
from devices.options import ChargerOptions, Endpoint, Resources

DEFAULT_PORT = 0  # the charger dials in: it has no port of its own
SECRETS = ("password",)


@dataclass(frozen=True, slots=True)
class OcppOptions(ChargerOptions):
    charge_point_id: str | None = None  # default: the device id
    # The central system's own listening address, shared by every OCPP charger of the daemon
    # (the first charger's values win); port 0 takes any free port (simulation).
    csms_host: str = "127.0.0.1"
    csms_port: int = field(default=9000, metadata=within(0, 65535))


def charge_point_id(opts: OcppOptions, ep: Endpoint) -> str:
    return opts.charge_point_id or ep.device_id


async def central_system(opts: OcppOptions, res: Resources) -> CentralSystem:
    """The daemon's one central system, started by the first OCPP charger that needs it."""
    csms = res.shared.get("csms")
    if not isinstance(csms, CentralSystem):
        csms = CentralSystem(res.clock, host=opts.csms_host, port=opts.csms_port)
        await csms.start()
        res.shared["csms"] = csms
        res.on_close(csms.stop)
    return csms


async def build(opts: OcppOptions, ep: Endpoint, res: Resources) -> OcppChargerAdapter:
    csms = await central_system(opts, res)
    cp_id = charge_point_id(opts, ep)
    if "password" in ep.secrets:
        csms.passwords[cp_id] = ep.secrets["password"]
    return OcppChargerAdapter(
        csms, cp_id, res.clock, max_power_w=ep.max_power_w, timeout_s=ep.timeout_s
    )
