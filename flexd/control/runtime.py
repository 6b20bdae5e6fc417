"""What the running daemon knows right now: each device's last good state and health, each
site's current plan and what asked for a re-plan. Shared by the control loop and the API."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from devices.base import ChargerAdapter, ChargerState, InverterAdapter, InverterState
from devices.ev_soc import SocReading
from flexd.config import DeviceConfig, SiteConfig
from flexd.control.plan import Plan
from flexd.control.preferences import Preferences

STALE_AFTER_POLLS = 2  # missed polls before a device's state is stale
OFFLINE_AFTER_POLLS = 5  # ... and before the device is offline


class Health(StrEnum):
    UNKNOWN = "unknown"  # never polled successfully yet
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"


@dataclass
class DeviceRuntime:
    config: DeviceConfig
    site_id: str
    adapter: InverterAdapter | ChargerAdapter | None = None
    state: InverterState | ChargerState | None = None
    last_ok: datetime | None = None
    polls: int = 0
    errors: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    preferences: Preferences = field(default_factory=Preferences)
    soc_pct: float | None = None  # EV: best known SoC after the fallback chain
    soc_source: str = "unknown"
    soc_measured_at: datetime | None = None
    plugged_in_at: datetime | None = None
    ready_by: datetime | None = None  # this session's ready-by instant
    soc_at_ready_by: float | None = None
    session_start_register_kwh: float = 0.0
    # A charger's car through its maker's cloud API, where configured (an adapter with
    # ``read_vehicle()``), and the last SoC it gave.
    vehicle: Any = None
    vehicle_soc: SocReading | None = None

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def kind(self) -> str:
        return self.config.kind

    def age_s(self, now: datetime) -> float | None:
        return None if self.last_ok is None else (now - self.last_ok).total_seconds()

    def health(self, now: datetime) -> Health:
        age = self.age_s(now)
        if age is None:
            return (
                Health.OFFLINE
                if self.consecutive_failures >= OFFLINE_AFTER_POLLS
                else Health.UNKNOWN
            )
        period = self.config.poll_seconds
        if age > period * OFFLINE_AFTER_POLLS or self.consecutive_failures >= OFFLINE_AFTER_POLLS:
            return Health.OFFLINE
        if age > period * STALE_AFTER_POLLS or self.consecutive_failures >= STALE_AFTER_POLLS:
            return Health.STALE
        return Health.ONLINE

    def usable(self, now: datetime) -> bool:
        return self.state is not None and self.health(now) in (Health.ONLINE, Health.STALE)

    def view(self, now: datetime) -> dict[str, Any]:
        """The JSON view the API and the MQTT bus publish."""
        state: dict[str, Any] | None = None
        if self.state is not None:
            state = {
                k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in _fields(self.state).items()
            }
        age = self.age_s(now)
        out: dict[str, Any] = {
            "id": self.id,
            "site": self.site_id,
            "brand": self.config.brand,
            "kind": self.kind,
            "health": self.health(now).value,
            "age_s": None if age is None else round(age, 1),
            "state": state,
            "last_error": self.last_error,
        }
        if self.kind == "charger":
            out["soc_pct"] = None if self.soc_pct is None else round(self.soc_pct, 1)
            out["soc_source"] = self.soc_source
            out["soc_age_s"] = (
                None
                if self.soc_measured_at is None
                else round((now - self.soc_measured_at).total_seconds(), 1)
            )
        return out


def _fields(obj: object) -> dict[str, Any]:
    names = getattr(obj, "__slots__", ())
    return {n: getattr(obj, n) for n in names if n != "raw"}


@dataclass
class SiteRuntime:
    config: SiteConfig
    devices: dict[str, DeviceRuntime]
    plan: Plan | None = None  # the latest plan (restored from storage at start-up)
    plan_made_at: datetime | None = None
    replan_reasons: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Real (perf_counter) time of the oldest pending re-plan request: re-plan latency is a
    # processing cost, so it is measured in real seconds, never on the simulated clock.
    requested_perf: float | None = None

    def request_replan(self, reason: str) -> None:
        self.replan_reasons.add(reason)
        if self.requested_perf is None:
            self.requested_perf = time.perf_counter()
        self.wake.set()

    def take_reasons(self) -> tuple[set[str], float | None]:
        reasons, self.replan_reasons = self.replan_reasons, set()
        requested, self.requested_perf = self.requested_perf, None
        self.wake.clear()
        return reasons, requested

    def inverters(self) -> list[DeviceRuntime]:
        return [d for d in self.devices.values() if d.kind == "inverter"]

    def chargers(self) -> list[DeviceRuntime]:
        return [d for d in self.devices.values() if d.kind == "charger"]


def build_sites(sites: tuple[SiteConfig, ...]) -> dict[str, SiteRuntime]:
    """Runtime objects for every configured site and device (adapters are attached later)."""
    out: dict[str, SiteRuntime] = {}
    for site in sites:
        devices = {
            d.id: DeviceRuntime(config=d, site_id=site.id, preferences=d.preferences)
            for d in site.devices
        }
        out[site.id] = SiteRuntime(config=site, devices=devices)
    return out
