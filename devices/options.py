"""What every device of a kind takes besides its brand's own options, and how a builder reaches
the device and the process it runs in. Parsed strictly by :func:`core.fields.parse_fields`."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.clock import Clock
from core.fields import at_least, within

Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BatteryOptions:
    """Every inverter brand: the battery's limits as the planner should use them."""

    max_charge_kw: float = field(default=3.0, metadata=at_least(0.0))
    max_discharge_kw: float = field(default=3.0, metadata=at_least(0.0))
    charge_efficiency: float = field(default=0.95, metadata=within(0.1, 1.0))
    discharge_efficiency: float = field(default=0.95, metadata=within(0.1, 1.0))


@dataclass(frozen=True, slots=True)
class ChargerOptions:
    """Every charger brand: the car's maker's cloud API as a SoC source, where there is one."""

    vehicle_api_url: str | None = None
    vin: str = ""
    vehicle_poll_seconds: float = field(default=600.0, metadata=at_least(1.0))
    # Simulation only: serve the simulated car on a simulated car API, and whether the simulated
    # charger reports the car's SoC (many real chargers do not).
    vehicle_api: bool = False
    reports_soc: bool = True


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one device is, and what it needs to be reached."""

    device_id: str
    host: str
    port: int
    timeout_s: float
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    # A gateway's own certificate: None takes the brand's rule (its ``gateway_ca`` option).
    ssl_context: ssl.SSLContext | None = None
    max_power_w: float = 7400.0  # chargers: the car's maximum AC charge power


class Resources(Protocol):
    """What a builder may use of the process: its clock, a place to register what must be closed
    at shutdown, and servers shared by many devices (the OCPP central system)."""

    clock: Clock
    shared: dict[str, Any]

    @property
    def mqtt_broker(self) -> tuple[str, int]:
        """The daemon's own MQTT broker, for devices that meet flexd on one."""
        ...

    def on_close(self, closer: Closer) -> None: ...


def gateway_ssl(ca_file: str | None) -> ssl.SSLContext | bool:
    """A home gateway presents its own self-signed certificate: trust the CA file given, else do
    not verify it (the LAN address is the identity; the password or JWT is what is protected)."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else False
