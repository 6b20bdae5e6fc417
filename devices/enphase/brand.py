"""Enphase IQ Gateway over local HTTPS with the owner's JWT: options and builder."""

from __future__ import annotations

from dataclasses import dataclass

from devices.enphase.adapter import EnphaseAdapter
from devices.options import BatteryOptions, Endpoint, Resources, gateway_ssl

DEFAULT_PORT = 443
SECRETS = ("token",)


@dataclass(frozen=True, slots=True)
class EnphaseOptions(BatteryOptions):
    gateway_ca: str | None = None


async def build(opts: EnphaseOptions, ep: Endpoint, res: Resources) -> EnphaseAdapter:
    adapter = EnphaseAdapter(
        ep.host, ep.port, res.clock, token=ep.secrets.get("token", ""),
        ssl_context=ep.ssl_context or gateway_ssl(opts.gateway_ca), timeout_s=ep.timeout_s,
    )  # fmt: skip
    res.on_close(adapter.close)
    return adapter
