"""The daemon's configuration as frozen dataclasses (parsed by :mod:`flexd.config.parse`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import FieldError
from core.fields import at_least
from flexd.control.preferences import Preferences

ROLES = ("app", "billing", "admin")


class ConfigError(FieldError):
    """A config key path and the reason it is refused."""

    field: str

    def __init__(self, path: str, reason: str, file: str | None = None) -> None:
        super().__init__(path, reason, f"{file}: {path}: {reason}" if file else None)
        self.path = path
        self.file = file


@dataclass(frozen=True, slots=True)
class EvConfig:
    capacity_kwh: float = field(default=60.0, metadata=at_least(1.0))
    max_charge_kw: float = field(default=7.4, metadata=at_least(0.1))
    efficiency: float = field(default=0.9, metadata={"min": 0.1, "max": 1.0})
    # the user's entered SoC when no source reports one
    initial_soc_pct: float = field(default=30.0, metadata={"min": 0.0, "max": 100.0})
    plug_in_local: str | None = None  # simulation only: "18:00"
    unplug_local: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    id: str
    brand: str
    kind: str  # "inverter" | "charger"
    host: str = "127.0.0.1"
    port: int = 0
    poll_seconds: float = 30.0
    timeout_s: float = 5.0
    simulate: bool = False
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    # The brand's own options: a frozen dataclass from devices.registry.BRANDS[brand].options.
    options: Any = None
    ev: EvConfig | None = None
    preferences: Preferences = field(default_factory=Preferences)


@dataclass(frozen=True, slots=True)
class SiteConfig:
    id: str
    account: str
    meter: str
    tariff: str
    import_kw: float = 15.0
    export_kw: float = 5.0
    reserve_pct: float = 10.0
    replan_soc_margin_pct: float = 5.0
    stability_threshold_p: float = 1.0
    devices: tuple[DeviceConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenConfig:
    name: str
    role: str
    sha256: str = field(repr=False)
    account: str | None = None


@dataclass(frozen=True, slots=True)
class ApiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = 1_048_576
    tokens: tuple[TokenConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class MqttConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca_file: Path | None = None  # trust this CA for the broker (else the system's)
    ha_discovery: bool = True
    prefix: str = "flexd"


@dataclass(frozen=True, slots=True)
class PriceConfig:
    source: str = "simulator"  # "url" | "file" | "simulator"
    base_url: str = "https://api.octopus.energy"
    product: str = "AGILE-24-10-01"
    import_tariff: str = "E-1R-AGILE-24-10-01-C"
    export_tariff: str | None = "E-1R-AGILE-OUTGOING-19-05-13-C"
    import_file: Path | None = None
    export_file: Path | None = None
    poll_minutes: float = 30.0
    publish_local: str = "16:00"  # simulator: when next-day prices appear
    late_minutes: float = 0.0  # simulator: publish this much later (tests of late prices)
    # Where the feed prices each method separately: DIRECT_DEBIT | NON_DIRECT_DEBIT.
    payment_method: str = "DIRECT_DEBIT"


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    start: datetime | None = None  # UTC; default: today's local 12:00
    speed: float = 3600.0
    hours: float = 24.0
    # The real Unix time at which simulated time is ``start``: every process given the same
    # anchor shares one simulated timeline (a fleet and its device simulators on simulated time).
    anchor_unix: float | None = None


@dataclass(frozen=True, slots=True)
class FleetConfig:
    enabled: bool = False
    instance_id: str | None = None  # default: host-pid
    lease_seconds: float = 30.0
    max_sites: int = 1000  # sites one instance controls at most


@dataclass(frozen=True, slots=True)
class Config:
    database: Path | str  # a SQLite file, or a postgresql:// URL
    log_format: str = "auto"  # "auto" | "json" | "console"
    cycle_seconds: float = 300.0
    planner_threads: int = 0  # solves at once; 0: one per core
    planner_processes: int = 0  # solver processes; 0: solve in threads (planner_threads)
    max_kwh_per_half_hour: float = 30.0  # a reading above this is refused (a meter glitch)
    readings_window_months: int = 24  # readings older than this are refused; 0: no limit
    api: ApiConfig = ApiConfig()
    mqtt: MqttConfig = MqttConfig()
    prices: PriceConfig = PriceConfig()
    simulation: SimulationConfig = SimulationConfig()
    fleet: FleetConfig = FleetConfig()
    sites: tuple[SiteConfig, ...] = ()
    source: Path | None = None
    database_password: str | None = field(default=None, repr=False)  # PostgreSQL, from env/file


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
