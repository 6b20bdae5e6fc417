"""Tesla Powerwall: payloads parsed and control bodies built by pure functions (no socket here).

Reads come from the local gateway (``/api/meters/aggregates``, ``/api/system_status/soe``,
``/api/system_status``, ``/api/operation``); control goes through the Fleet-API-shaped energy
site endpoints (``/api/1/energy_sites/{id}/operation``, ``.../backup``,
``.../grid_import_export``), because newer firmware answers local control with 403.

Two conventions are flipped here, once:
- The gateway's state of energy and backup reserve include a 5 % reserve the owner never sees:
  usable % = (gateway % - 5) / 0.95. flexd works in usable %, so SoC is converted on the way in
  and the reserve both ways (the Fleet API's ``backup_reserve_percent`` is in the app's usable
  scale, the local ``/api/operation`` reports the gateway scale).
- ``aggregates`` signs agree with flexd: site instant_power > 0 is importing, battery > 0 is
  discharging; solar and load are magnitudes.

Modes (the Powerwall has no power setpoint: it charges and discharges at its own rate):
- SELF_USE: ``self_consumption``, grid charging off, export ``pv_only``, the last reserve set.
- FORCE_CHARGE: grid charging on and reserve 100 %: the Powerwall fills from the grid.
- HOLD: reserve at the current SoC, so the house is served by the grid, not the battery.
- FORCE_DISCHARGE (export at a power) has no truthful mapping: only a time-of-use tariff in
  ``autonomous`` mode makes a Powerwall export, at times it chooses. It is NotSupported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devices.base import BatteryMode
from devices.errors import BadPayload, NotSupported

HIDDEN_RESERVE_PCT = 5.0
MODES = ("self_consumption", "autonomous", "backup")
EXPORT_RULES = ("pv_only", "battery_ok", "never")


def usable_from_gateway(pct: float) -> float:
    return max(0.0, min(100.0, (pct - HIDDEN_RESERVE_PCT) / (1 - HIDDEN_RESERVE_PCT / 100)))


def gateway_from_usable(pct: float) -> float:
    return HIDDEN_RESERVE_PCT + pct * (1 - HIDDEN_RESERVE_PCT / 100)


def _num(doc: Mapping[str, Any], key: str, where: str) -> float:
    v = doc.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadPayload(f"powerwall {where}: {key} missing or not a number")
    return float(v)


def _obj(doc: object, key: str, where: str) -> Mapping[str, Any]:
    v = doc.get(key) if isinstance(doc, Mapping) else None
    if not isinstance(v, Mapping):
        raise BadPayload(f"powerwall {where}: {key} missing")
    return v


@dataclass(frozen=True, slots=True)
class Aggregates:
    site_w: float  # > 0 importing
    battery_w: float  # > 0 discharging
    solar_w: float
    load_w: float
    imported_kwh: float
    exported_kwh: float


def parse_aggregates(doc: object) -> Aggregates:
    site, battery = _obj(doc, "site", "aggregates"), _obj(doc, "battery", "aggregates")
    solar, load = _obj(doc, "solar", "aggregates"), _obj(doc, "load", "aggregates")
    return Aggregates(
        site_w=_num(site, "instant_power", "aggregates.site"),
        battery_w=_num(battery, "instant_power", "aggregates.battery"),
        solar_w=max(0.0, _num(solar, "instant_power", "aggregates.solar")),
        load_w=max(0.0, _num(load, "instant_power", "aggregates.load")),
        imported_kwh=_num(site, "energy_imported", "aggregates.site") / 1000.0,  # Wh
        exported_kwh=_num(site, "energy_exported", "aggregates.site") / 1000.0,
    )


def parse_soe(doc: object) -> float:
    """The usable SoC % from ``/api/system_status/soe``."""
    if not isinstance(doc, Mapping):
        raise BadPayload("powerwall soe: not an object")
    pct = _num(doc, "percentage", "soe")
    if not 0 <= pct <= 100:
        raise BadPayload(f"powerwall soe: percentage {pct} is outside 0..100")
    return usable_from_gateway(pct)


def parse_capacity_kwh(doc: object) -> float:
    """Usable capacity from ``/api/system_status`` (nominal_full_pack_energy, Wh, less 5 %)."""
    if not isinstance(doc, Mapping):
        raise BadPayload("powerwall system_status: not an object")
    wh = _num(doc, "nominal_full_pack_energy", "system_status")
    if wh <= 0:
        raise BadPayload("powerwall system_status: nominal_full_pack_energy is not positive")
    return wh / 1000.0 * (1 - HIDDEN_RESERVE_PCT / 100)


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """What the Fleet API's site_info says the Powerwall is set to (usable-scale reserve)."""

    mode: str
    backup_reserve_pct: float
    grid_charging: bool
    export_rule: str


def parse_site_info(doc: object) -> SiteSettings:
    r = _obj(doc, "response", "site_info")
    mode = r.get("default_real_mode")
    if mode not in MODES:
        raise BadPayload(f"powerwall site_info: default_real_mode {mode!r} is unknown")
    comp = r.get("components", {})
    if not isinstance(comp, Mapping):
        raise BadPayload("powerwall site_info: components is not an object")
    # The Fleet API puts both grid settings under response.components (its site_info example);
    # a top-level export rule is read only where components lacks one.
    rule = comp.get("customer_preferred_export_rule",
                    r.get("customer_preferred_export_rule", "pv_only"))  # fmt: skip
    if rule not in EXPORT_RULES:
        raise BadPayload(f"powerwall site_info: export rule {rule!r} is unknown")
    # Absent means the site never restricted it: charging from the grid is allowed.
    disallow = comp.get("disallow_charge_from_grid_with_solar_installed", False)
    return SiteSettings(
        mode=str(mode),
        backup_reserve_pct=_num(r, "backup_reserve_percent", "site_info"),
        grid_charging=not bool(disallow),
        export_rule=str(rule),
    )


def mode_of(s: SiteSettings, soc_pct: float, hold_reserve_pct: float | None) -> BatteryMode:
    if s.grid_charging and s.backup_reserve_pct >= 100 and soc_pct < 99.5:
        return BatteryMode.FORCE_CHARGE
    if hold_reserve_pct is not None and abs(s.backup_reserve_pct - hold_reserve_pct) < 0.5:
        return BatteryMode.HOLD
    if s.mode == "autonomous":
        return BatteryMode.ECO
    return BatteryMode.SELF_USE


@dataclass(frozen=True, slots=True)
class Call:
    """One Fleet API control call: POST path (under the energy site) with a JSON body."""

    path: str
    body: Mapping[str, Any]


def settings_calls(want: SiteSettings) -> list[Call]:
    """The calls that put the site in ``want`` (each checked against the allowed values)."""
    if want.mode not in MODES or want.export_rule not in EXPORT_RULES:
        raise NotSupported(f"powerwall: mode {want.mode!r} / export {want.export_rule!r}")
    if not 0 <= want.backup_reserve_pct <= 100:
        raise NotSupported("powerwall: backup reserve must be within 0..100")
    return [
        Call("operation", {"default_real_mode": want.mode}),
        Call("backup", {"backup_reserve_percent": round(want.backup_reserve_pct)}),
        Call("grid_import_export", {
            "disallow_charge_from_grid_with_solar_installed": not want.grid_charging,
            "customer_preferred_export_rule": want.export_rule,
        }),
    ]  # fmt: skip


def settings_for(
    mode: BatteryMode, soc_pct: float, reserve_pct: float, export_rule: str = "pv_only"
) -> SiteSettings:
    """The site settings that make the Powerwall do ``mode`` (reserve_pct: the owner's). The
    owner's export rule is kept as it is: on IO Flux ``battery_ok`` is what lets the battery
    export in the peak, and no mode here needs another."""
    rule = export_rule
    if mode == BatteryMode.FORCE_CHARGE:
        return SiteSettings("self_consumption", 100.0, True, rule)
    if mode == BatteryMode.HOLD:
        return SiteSettings("self_consumption", float(round(soc_pct)), False, rule)
    if mode == BatteryMode.ECO:
        return SiteSettings("autonomous", reserve_pct, False, rule)
    if mode == BatteryMode.SELF_USE:
        return SiteSettings("self_consumption", reserve_pct, False, rule)
    raise NotSupported("powerwall cannot export at a set power (only a TOU tariff makes it export)")
