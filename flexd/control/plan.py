"""The plan: one type for the daemon's plan of a site (per-slot values on a half-hour grid and
the EV dispatches), built from the optimiser's :class:`~optimiser.Schedule` for its
:class:`~optimiser.Problem`. Its wire shapes are :meth:`Plan.to_json` (stored and served, read
back by :meth:`Plan.from_json`) and :meth:`Plan.next_24h` (MQTT)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flexd.control.dispatch_rules import PlanSlot

Series = tuple[float, ...]
Span = tuple[datetime, datetime, float]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _series(xs: Sequence[float]) -> Series:
    return tuple(float(x) for x in xs)


@dataclass(frozen=True, slots=True)
class Plan:
    start: datetime
    slot_minutes: int
    objective_p: float
    status: str
    import_price_p: Series
    export_price_p: Series
    grid_import_kwh: Series
    grid_export_kwh: Series
    battery_charge_kwh: Series
    battery_discharge_kwh: Series
    battery_soc_kwh: Series | None
    battery_capacity_kwh: float
    load_kwh: Series
    pv_kwh: Series
    ev_charge_kwh: Mapping[str, Series] = field(default_factory=dict)
    ev_soc_kwh: Mapping[str, Series] = field(default_factory=dict)
    ev_shortfall_kwh: Mapping[str, float] = field(default_factory=dict)
    ev_dispatches: Mapping[str, tuple[Span, ...]] = field(default_factory=dict)
    fallback_slots: int = 0
    solve_s: float = 0.0
    kept_current_slot: bool = False

    @property
    def n(self) -> int:
        return len(self.grid_import_kwh)

    @property
    def slot_hours(self) -> float:
        return self.slot_minutes / 60

    def starts(self) -> list[datetime]:
        step = timedelta(minutes=self.slot_minutes)
        return [self.start + i * step for i in range(self.n)]

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.slot_minutes * self.n)

    def slot_index(self, t: datetime) -> int | None:
        if t < self.start or t >= self.end:
            return None
        return int((t - self.start).total_seconds() // (self.slot_minutes * 60))

    def ev_total(self, i: int) -> float:
        return sum(v[i] for v in self.ev_charge_kwh.values())

    def slot(self, i: int) -> PlanSlot:
        return PlanSlot(
            start=self.start + timedelta(minutes=self.slot_minutes * i),
            hours=self.slot_hours,
            grid_import_kwh=self.grid_import_kwh[i],
            grid_export_kwh=self.grid_export_kwh[i],
            battery_charge_kwh=self.battery_charge_kwh[i],
            battery_discharge_kwh=self.battery_discharge_kwh[i],
            load_kwh=self.load_kwh[i],
            pv_kwh=self.pv_kwh[i],
            ev_kwh=self.ev_total(i),
        )

    def ev_series(self, device_id: str) -> tuple[list[datetime], Series]:
        return self.starts(), self.ev_charge_kwh.get(device_id, (0.0,) * self.n)

    def to_json(self) -> dict[str, Any]:
        r = lambda xs: [round(x, 4) for x in xs]  # noqa: E731
        return {
            "battery_capacity_kwh": round(self.battery_capacity_kwh, 4),
            "start": _iso(self.start),
            "slot_minutes": self.slot_minutes,
            "status": self.status,
            "objective_p": round(self.objective_p, 4),
            "fallback_price_slots": self.fallback_slots,
            "import_price_p": r(self.import_price_p),
            "export_price_p": r(self.export_price_p),
            "grid_import_kwh": r(self.grid_import_kwh),
            "grid_export_kwh": r(self.grid_export_kwh),
            "battery_charge_kwh": r(self.battery_charge_kwh),
            "battery_discharge_kwh": r(self.battery_discharge_kwh),
            "battery_soc_kwh": None if self.battery_soc_kwh is None else r(self.battery_soc_kwh),
            "load_kwh": r(self.load_kwh),
            "pv_kwh": r(self.pv_kwh),
            "evs": {
                dev: {
                    "charge_kwh": r(self.ev_charge_kwh[dev]),
                    "soc_kwh": r(self.ev_soc_kwh.get(dev, [])),
                    "shortfall_kwh": round(self.ev_shortfall_kwh.get(dev, 0.0), 4),
                    "dispatches": [
                        {"start": _iso(s), "end": _iso(e), "kwh": round(k, 4)}
                        for s, e, k in self.ev_dispatches.get(dev, [])
                    ],
                }
                for dev in self.ev_charge_kwh
            },
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Plan:
        """The plan :meth:`to_json` stored (values as rounded there)."""
        soc = doc.get("battery_soc_kwh")
        evs: Mapping[str, Any] = doc.get("evs", {})
        return cls(
            start=_instant(doc["start"]),
            slot_minutes=int(doc["slot_minutes"]),
            objective_p=float(doc["objective_p"]),
            status=str(doc["status"]),
            import_price_p=_series(doc["import_price_p"]),
            export_price_p=_series(doc["export_price_p"]),
            grid_import_kwh=_series(doc["grid_import_kwh"]),
            grid_export_kwh=_series(doc["grid_export_kwh"]),
            battery_charge_kwh=_series(doc["battery_charge_kwh"]),
            battery_discharge_kwh=_series(doc["battery_discharge_kwh"]),
            battery_soc_kwh=None if soc is None else _series(soc),
            battery_capacity_kwh=float(doc.get("battery_capacity_kwh", 0.0)),
            load_kwh=_series(doc["load_kwh"]),
            pv_kwh=_series(doc["pv_kwh"]),
            ev_charge_kwh={d: _series(e["charge_kwh"]) for d, e in evs.items()},
            ev_soc_kwh={d: _series(e["soc_kwh"]) for d, e in evs.items()},
            ev_shortfall_kwh={d: float(e["shortfall_kwh"]) for d, e in evs.items()},
            ev_dispatches={
                d: tuple((_instant(x["start"]), _instant(x["end"]), float(x["kwh"]))
                         for x in e["dispatches"])
                for d, e in evs.items()
            },
            fallback_slots=int(doc.get("fallback_price_slots", 0)),
        )

    def next_24h(self, device_id: str) -> dict[str, Any]:
        """The slice of the plan one device's MQTT plan topic carries."""
        n = min(self.n, int(24 * 60 / self.slot_minutes))
        starts = [_iso(t) for t in self.starts()[:n]]
        out: dict[str, Any] = {"start": starts[0] if starts else None, "slots": starts}
        if device_id in self.ev_charge_kwh:
            out["charge_kwh"] = [round(x, 3) for x in self.ev_charge_kwh[device_id][:n]]
            out["dispatches"] = self.to_json()["evs"][device_id]["dispatches"]
        else:
            out["battery_charge_kwh"] = [round(x, 3) for x in self.battery_charge_kwh[:n]]
            out["battery_discharge_kwh"] = [round(x, 3) for x in self.battery_discharge_kwh[:n]]
            if self.battery_soc_kwh is not None:
                out["battery_soc_kwh"] = [round(x, 3) for x in self.battery_soc_kwh[:n]]
        out["import_price_p"] = [round(x, 3) for x in self.import_price_p[:n]]
        return out
