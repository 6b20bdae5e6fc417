"""Enphase IQ Gateway (Envoy): payloads parsed with ``pyenphase``'s models and the storage
settings built for each mode, by pure functions (no socket here).

Reads: ``/ivp/meters`` + ``/ivp/meters/readings`` (the production and net-consumption CTs,
parsed by ``EnvoyMeterData``), ``/ivp/ensemble/secctrl`` (aggregate SoC and capacity, parsed by
``EnvoyEnchargeAggregate``), ``/ivp/ensemble/power`` (per-battery real power in mW, parsed by
``EnvoyEnchargePower``). Control: the tariff document ``/admin/lib/tariff``, whose
``storage_settings`` (``EnvoyStorageSettings``) carry the mode, the reserve and charge-from-grid.

Signs: the net-consumption CT's active power > 0 is importing (flexd's grid_w), battery real
power > 0 is discharging (flexd's battery_w). The house load is what balances them.

Modes (an IQ Battery charges and discharges at its own rate: no power setpoint):
- SELF_USE: ``self-consumption`` with the owner's reserve, no grid charging.
- ECO: ``economy`` (the app's "savings"), no grid charging.
- HOLD: ``self-consumption`` with the reserve at the current SoC.
- FORCE_CHARGE: ``backup`` ("full backup") with charge-from-grid on: fills from the grid.
- FORCE_DISCHARGE (export at a power) is not something the gateway offers locally: NotSupported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyenphase.models.acb import EnvoyBatteryAggregate
from pyenphase.models.encharge import EnvoyEnchargeAggregate, EnvoyEnchargePower
from pyenphase.models.meters import EnvoyMeterData
from pyenphase.models.tariff import EnvoyStorageMode, EnvoyStorageSettings

from devices.base import BatteryMode
from devices.errors import BadPayload, NotSupported

URL_METERS = "/ivp/meters"
URL_READINGS = "/ivp/meters/readings"
URL_SECCTRL = "/ivp/ensemble/secctrl"
URL_POWER = "/ivp/ensemble/power"
URL_TARIFF = "/admin/lib/tariff"


@dataclass(frozen=True, slots=True)
class Meters:
    pv_w: float
    grid_w: float | None  # > 0 importing; None when only the house is metered (see grid_with)
    import_kwh: float | None
    export_kwh: float | None
    house_w: float | None = None  # a total-consumption CT's reading

    def grid_with(self, battery_w: float) -> float:
        """Grid power: the net CT's, or the house less PV and battery discharge."""
        if self.grid_w is not None:
            return self.grid_w
        assert self.house_w is not None
        return self.house_w - self.pv_w - battery_w


def parse_meters(meters: object, readings: object) -> Meters:
    """The production and net-consumption CTs from ``/ivp/meters`` and its readings."""
    if not isinstance(meters, list) or not isinstance(readings, list):
        raise BadPayload("enphase meters: not a list")
    kinds: dict[int, str] = {}
    status: dict[int, Any] = {}
    for m in meters:
        if isinstance(m, Mapping) and m.get("state") == "enabled" and "eid" in m:
            kinds[m["eid"]] = str(m.get("measurementType"))
            status[m["eid"]] = m
    by_kind: dict[str, EnvoyMeterData] = {}
    for r in readings:
        if not isinstance(r, Mapping) or r.get("eid") not in kinds:
            continue
        try:
            by_kind[kinds[r["eid"]]] = EnvoyMeterData.from_api(dict(r), status[r["eid"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadPayload(f"enphase meter reading: {exc!r} missing or bad") from None
    prod = by_kind.get("production")
    pv_w = max(0.0, float(prod.active_power)) if prod is not None else 0.0
    net = by_kind.get("net-consumption")
    if net is not None:
        return Meters(pv_w=pv_w, grid_w=float(net.active_power),
                      import_kwh=net.energy_delivered / 1000.0,
                      export_kwh=net.energy_received / 1000.0)  # fmt: skip
    total = by_kind.get("total-consumption")
    if total is None:
        raise BadPayload("enphase meters: no enabled net- or total-consumption CT "
                         "(grid power unknown)")  # fmt: skip
    if prod is None:
        raise BadPayload("enphase meters: a total-consumption CT without a production CT "
                         "leaves the grid unknown")  # fmt: skip
    # A total-consumption CT (load side) measures the house, not the grid (capture 8.3.5433):
    # the grid is what the house takes beyond PV and the battery, and there is no grid energy
    # register, so metering integrates power instead.
    return Meters(pv_w=pv_w, grid_w=None, import_kwh=None, export_kwh=None,
                  house_w=float(total.active_power))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Battery:
    soc_pct: float
    capacity_kwh: float
    power_w: float  # > 0 discharging


def parse_battery(secctrl: object, power: object) -> Battery:
    """SoC and capacity of every battery behind the gateway. Where the gateway reports the
    combined aggregate of IQ Batteries and AC Batteries (``agg_soc``/``Max_energy``, parsed by
    pyenphase's ``EnvoyBatteryAggregate``; captures 8.2.4382_ACB and 8.3.5169_ACB_inventory),
    that is used; the IQ-only ``ENC_*`` aggregate left the AC Batteries out. Power is the IQ
    Batteries' (``/ivp/ensemble/power`` lists no AC Battery); an AC Battery's own power is not
    read locally here."""
    try:
        doc = dict(secctrl)  # type: ignore[call-overload]
        devices = power["devices:"]  # type: ignore[index]  # sic: the gateway's key
        units = [EnvoyEnchargePower.from_api(d) for d in devices]
        if doc.get("Max_energy", 0) > 0 and "agg_soc" in doc:
            both = EnvoyBatteryAggregate.from_api(doc)
            soc, capacity, what = both.state_of_charge, both.max_available_capacity, "agg_soc"
        else:
            agg = EnvoyEnchargeAggregate.from_api(doc)
            soc, capacity, what = agg.state_of_charge, agg.max_available_capacity, "ENC_agg_soc"
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadPayload(f"enphase battery: {exc!r} missing or bad") from None
    if not 0 <= soc <= 100:
        raise BadPayload(f"enphase battery: {what} {soc} outside 0..100")
    if capacity <= 0:
        raise BadPayload("enphase battery: no battery capacity (Max_energy and "
                         "Enc_max_available_capacity are 0)")  # fmt: skip
    return Battery(
        soc_pct=float(soc),
        capacity_kwh=capacity / 1000.0,
        power_w=sum(u.real_power_mw for u in units) / 1000.0,
    )


def parse_storage(tariff_doc: object) -> EnvoyStorageSettings:
    try:
        return EnvoyStorageSettings.from_api(tariff_doc["tariff"]["storage_settings"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadPayload(f"enphase tariff: storage_settings {exc!r} missing or bad") from None


@dataclass(frozen=True, slots=True)
class Storage:
    """The part of storage_settings flexd sets."""

    mode: EnvoyStorageMode
    reserve_pct: float
    charge_from_grid: bool

    @classmethod
    def of(cls, s: EnvoyStorageSettings) -> Storage:
        mode = s.mode or EnvoyStorageMode.SELF_CONSUMPTION
        return cls(mode, float(s.reserved_soc), bool(s.charge_from_grid))


def storage_for(mode: BatteryMode, soc_pct: float, reserve_pct: float) -> Storage:
    if mode == BatteryMode.FORCE_CHARGE:
        return Storage(EnvoyStorageMode.BACKUP, reserve_pct, True)
    if mode == BatteryMode.HOLD:
        return Storage(EnvoyStorageMode.SELF_CONSUMPTION, float(round(soc_pct)), False)
    if mode == BatteryMode.ECO:
        return Storage(EnvoyStorageMode.SAVINGS, reserve_pct, False)
    if mode == BatteryMode.SELF_USE:
        return Storage(EnvoyStorageMode.SELF_CONSUMPTION, reserve_pct, False)
    raise NotSupported("enphase cannot export at a set power from the local gateway")


def mode_of(s: Storage, hold_reserve_pct: float | None) -> BatteryMode:
    if s.mode == EnvoyStorageMode.BACKUP and s.charge_from_grid:
        return BatteryMode.FORCE_CHARGE
    if s.mode == EnvoyStorageMode.BACKUP:
        return BatteryMode.HOLD
    if hold_reserve_pct is not None and abs(s.reserve_pct - hold_reserve_pct) < 0.5:
        return BatteryMode.HOLD
    if s.mode == EnvoyStorageMode.SAVINGS:
        return BatteryMode.ECO
    return BatteryMode.SELF_USE


def tariff_with(tariff_doc: Mapping[str, Any], want: Storage) -> dict[str, Any]:
    """The whole tariff document with only flexd's storage fields changed (the gateway takes
    the document back whole, so the rest of the owner's tariff is kept as it was)."""
    if not 0 <= want.reserve_pct <= 100:
        raise NotSupported("enphase reserve must be within 0..100")
    current = parse_storage(tariff_doc)
    current.mode = want.mode
    current.reserved_soc = round(want.reserve_pct)
    current.charge_from_grid = want.charge_from_grid
    tariff = dict(tariff_doc["tariff"])
    tariff["storage_settings"] = current.to_api()
    return {"tariff": tariff}
