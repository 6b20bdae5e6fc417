"""Tesla Powerwall: local gateway reads, Fleet API control. Options and builder."""

from __future__ import annotations

from dataclasses import dataclass

from devices.options import BatteryOptions, Endpoint, Resources, gateway_ssl
from devices.powerwall.adapter import PowerwallAdapter

DEFAULT_PORT = 443
FLEET_API_EU = "https://fleet-api.prd.eu.vn.cloud.tesla.com"
SECRETS = ("password", "fleet_token")


@dataclass(frozen=True, slots=True)
class PowerwallOptions(BatteryOptions):
    energy_site_id: str = ""
    email: str = ""
    fleet_url: str | None = FLEET_API_EU  # None: control through the gateway itself
    gateway_ca: str | None = None


async def build(opts: PowerwallOptions, ep: Endpoint, res: Resources) -> PowerwallAdapter:
    adapter = PowerwallAdapter(
        ep.host, ep.port, res.clock, password=ep.secrets.get("password", ""),
        fleet_token=ep.secrets.get("fleet_token", ""), site_id=opts.energy_site_id,
        fleet_url=opts.fleet_url, email=opts.email,
        ssl_context=ep.ssl_context or gateway_ssl(opts.gateway_ca), timeout_s=ep.timeout_s,
    )  # fmt: skip
    res.on_close(adapter.close)
    return adapter
