"""The plan slot -> battery mode rule, and its fallback where a brand lacks a mode."""

from datetime import UTC, datetime

import pytest

from devices.base import BatteryMode
from flexd.control.dispatch_rules import PlanSlot, inverter_command

ALL = frozenset(BatteryMode)


def slot(**kw):
    base = {"start": datetime(2026, 1, 15, 17, tzinfo=UTC), "hours": 0.5, "import_price_p": 20.0, "export_price_p": 15.0, "grid_import_kwh": 0.0,
            "grid_export_kwh": 0.0, "battery_charge_kwh": 0.0, "battery_discharge_kwh": 0.0,
            "load_kwh": 0.4, "pv_kwh": 0.0, "ev_kwh": 0.0}  # fmt: skip
    base.update(kw)
    return PlanSlot(**{k: v for k, v in base.items() if k in PlanSlot.__dataclass_fields__})


@pytest.mark.parametrize(("kw", "mode", "power"), [
    ({"battery_charge_kwh": 1.5, "grid_import_kwh": 1.9}, BatteryMode.FORCE_CHARGE, 3000),
    ({"battery_discharge_kwh": 1.5, "grid_export_kwh": 1.1}, BatteryMode.FORCE_DISCHARGE, 3000),
    ({"grid_import_kwh": 0.4}, BatteryMode.HOLD, None),
    ({"battery_discharge_kwh": 0.4}, BatteryMode.SELF_USE, None),
    ({"pv_kwh": 1.0, "battery_charge_kwh": 0.6}, BatteryMode.SELF_USE, None),
])  # fmt: skip
def test_plan_slot_to_mode(kw, mode, power):
    cmd = inverter_command(slot(**kw), ALL)
    assert cmd.mode == mode and cmd.power_w == power


def test_a_mode_the_brand_lacks_falls_back_to_self_use():
    no_export = ALL - {BatteryMode.FORCE_DISCHARGE}
    cmd = inverter_command(slot(battery_discharge_kwh=1.5, grid_export_kwh=1.1), no_export)
    assert cmd.mode == BatteryMode.SELF_USE and cmd.power_w is None
