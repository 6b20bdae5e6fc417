"""The one brand list: each brand's kind, its options (a frozen dataclass parsed strictly), the
secrets it takes, its default port and how to build its adapter. Nothing registers itself at
import time; a new brand is one entry here and one folder beside this file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from devices.base import ChargerAdapter, InverterAdapter
from devices.enphase import brand as enphase
from devices.givenergy import brand as givenergy
from devices.ocpp import brand as ocpp
from devices.openevse import brand as openevse
from devices.options import ChargerOptions, Endpoint, Resources
from devices.powerwall import brand as powerwall
from devices.solaredge import brand as solaredge
from devices.vehicle_api import VehicleApiAdapter

Adapter = InverterAdapter | ChargerAdapter
Builder = Callable[[Any, Endpoint, Resources], Awaitable[Any]]
INVERTER, CHARGER = "inverter", "charger"
# Secrets every charger may take, for its car's cloud API.
VEHICLE_SECRETS = ("vehicle_token", "vehicle_refresh_token")


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    kind: str  # inverter | charger
    options: type  # the brand's frozen options dataclass
    build: Builder
    default_port: int
    secrets: tuple[str, ...] = ()

    @property
    def all_secrets(self) -> tuple[str, ...]:
        return self.secrets + (VEHICLE_SECRETS if self.kind == CHARGER else ())


BRANDS: dict[str, Brand] = {
    b.name: b
    for b in (
        Brand("givenergy", INVERTER, givenergy.GivEnergyOptions, givenergy.build,
              givenergy.DEFAULT_PORT),
        Brand("solaredge", INVERTER, solaredge.SolarEdgeOptions, solaredge.build,
              solaredge.DEFAULT_PORT),
        Brand("enphase", INVERTER, enphase.EnphaseOptions, enphase.build, enphase.DEFAULT_PORT,
              enphase.SECRETS),
        Brand("powerwall", INVERTER, powerwall.PowerwallOptions, powerwall.build,
              powerwall.DEFAULT_PORT, powerwall.SECRETS),
        Brand("ocpp", CHARGER, ocpp.OcppOptions, ocpp.build, ocpp.DEFAULT_PORT, ocpp.SECRETS),
        Brand("openevse", CHARGER, openevse.OpenEvseOptions, openevse.build,
              openevse.DEFAULT_PORT),
    )
}  # fmt: skip


def build_vehicle(opts: ChargerOptions, ep: Endpoint) -> VehicleApiAdapter | None:
    """The charger's car through its maker's cloud API, where ``vehicle_api_url`` is set."""
    if not opts.vehicle_api_url:
        return None
    return VehicleApiAdapter(
        opts.vehicle_api_url, opts.vin, ep.secrets.get("vehicle_token", ""),
        refresh_token=ep.secrets.get("vehicle_refresh_token"), timeout_s=ep.timeout_s,
    )  # fmt: skip
