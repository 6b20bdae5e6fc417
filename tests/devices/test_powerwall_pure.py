"""Powerwall payloads and control bodies (no socket), and the gateway's quirks over HTTPS."""

from datetime import UTC, datetime

import pytest

from core.clock import ManualClock
from devices.base import BatteryMode, SetBatteryMode
from devices.errors import BadPayload, NotSupported
from devices.powerwall import api as P
from tests.devices.harness_powerwall import make_pair


@pytest.mark.parametrize(("gateway", "usable"), [(5.0, 0.0), (100.0, 100.0), (52.5, 50.0), (2, 0.0)])
def test_hidden_reserve_conversion_both_ways(gateway, usable):
    assert P.usable_from_gateway(gateway) == pytest.approx(usable)
    if gateway >= 5:
        assert P.gateway_from_usable(usable) == pytest.approx(gateway)


def agg(site=-1200.0, battery=800.0):
    m = {"last_communication_time": "2026-01-15T12:00:00Z"}
    return {"site": m | {"instant_power": site, "energy_imported": 12345.0, "energy_exported": 678.0},
            "battery": m | {"instant_power": battery}, "solar": m | {"instant_power": 2500.0},
            "load": m | {"instant_power": 2100.0}}  # fmt: skip


def test_aggregates_signs_and_energy_units():
    a = P.parse_aggregates(agg())
    assert a.site_w == -1200 and a.battery_w == 800  # exporting, discharging: flexd's signs
    assert (a.solar_w, a.load_w) == (2500, 2100)
    assert a.imported_kwh == pytest.approx(12.345) and a.exported_kwh == pytest.approx(0.678)


@pytest.mark.parametrize(("doc", "match"), [
    ({}, "site"), ({**agg(), "battery": {"instant_power": "x"}}, "instant_power"),
    ([], "site"),
])  # fmt: skip
def test_bad_aggregates_name_the_field(doc, match):
    with pytest.raises(BadPayload, match=match):
        P.parse_aggregates(doc)


def test_soe_and_capacity_drop_the_hidden_reserve():
    assert P.parse_soe({"percentage": 81.0}) == pytest.approx(80.0)
    assert P.parse_capacity_kwh({"nominal_full_pack_energy": 14210.5}) == pytest.approx(13.5, rel=1e-4)
    with pytest.raises(BadPayload, match="outside"):
        P.parse_soe({"percentage": 130})


def info(**over):
    r = {"default_real_mode": "self_consumption", "backup_reserve_percent": 20,
         "customer_preferred_export_rule": "pv_only",
         "components": {"disallow_charge_from_grid_with_solar_installed": True}}  # fmt: skip
    r.update(over)
    return {"response": r}


def test_site_info_and_mode_of():
    s = P.parse_site_info(info())
    assert s == P.SiteSettings("self_consumption", 20.0, False, "pv_only")
    assert P.mode_of(s, 50, None) == BatteryMode.SELF_USE
    charging = P.parse_site_info(info(backup_reserve_percent=100, components={
        "disallow_charge_from_grid_with_solar_installed": False}))  # fmt: skip
    assert P.mode_of(charging, 60, None) == BatteryMode.FORCE_CHARGE
    assert P.mode_of(charging, 100, None) == BatteryMode.SELF_USE  # full: nothing forced
    assert P.mode_of(P.parse_site_info(info(backup_reserve_percent=63)), 63, 63) == BatteryMode.HOLD
    with pytest.raises(BadPayload, match="default_real_mode"):
        P.parse_site_info(info(default_real_mode="turbo"))


def test_settings_and_calls_for_each_mode():
    assert P.settings_for(BatteryMode.FORCE_CHARGE, 40, 20) == P.SiteSettings(
        "self_consumption", 100.0, True, "pv_only")  # fmt: skip
    assert P.settings_for(BatteryMode.HOLD, 63.4, 20).backup_reserve_pct == 63
    assert P.settings_for(BatteryMode.ECO, 40, 20).mode == "autonomous"
    with pytest.raises(NotSupported, match="export"):
        P.settings_for(BatteryMode.FORCE_DISCHARGE, 40, 20)
    calls = P.settings_calls(P.SiteSettings("self_consumption", 35.4, False, "pv_only"))
    assert [(c.path, dict(c.body)) for c in calls] == [
        ("operation", {"default_real_mode": "self_consumption"}),
        ("backup", {"backup_reserve_percent": 35}),
        ("grid_import_export", {"disallow_charge_from_grid_with_solar_installed": True,
                                "customer_preferred_export_rule": "pv_only"}),
    ]  # fmt: skip
    with pytest.raises(NotSupported):
        P.settings_calls(P.SiteSettings("turbo", 20, False, "pv_only"))


T0 = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)  # evening: the house draws, no PV


async def test_hold_keeps_the_charge_while_the_house_draws():
    pair = await make_pair(ManualClock(T0))
    try:
        before = await pair.adapter.read_state()
        assert (await pair.adapter.apply(SetBatteryMode(BatteryMode.HOLD))).honoured
        pair.clock.advance(45 * 60)
        s = await pair.adapter.read_state()
        assert s.mode == BatteryMode.HOLD
        assert s.battery_w == pytest.approx(0, abs=1) and s.grid_w > 500
        assert s.battery_soc_pct == pytest.approx(before.battery_soc_pct, abs=0.6)
    finally:
        await pair.close()


async def test_local_control_is_forbidden_by_the_gateway():
    pair = await make_pair(ManualClock(T0))
    try:
        adapter = pair.adapter
        await adapter.read_state()
        with pytest.raises(NotSupported, match="403"):
            await adapter._http.request("POST", f"{adapter.gateway}/api/operation",
                                        token=adapter._token, payload={"real_mode": "backup"})  # fmt: skip
        with pytest.raises(NotSupported):
            await adapter.apply(SetBatteryMode(BatteryMode.FORCE_DISCHARGE, 3000))
    finally:
        await pair.close()


def documented_info(**components):
    # The Fleet API's site_info, as Tesla's documentation shows it: the grid settings sit under
    # response.components, not at the top of response.
    comp = {"battery": True, "solar": True, "customer_preferred_export_rule": "battery_ok",
            "disallow_charge_from_grid_with_solar_installed": True}  # fmt: skip
    comp.update(components)
    return {"response": {"default_real_mode": "self_consumption", "backup_reserve_percent": 20,
                         "components": {k: v for k, v in comp.items() if v is not None}}}  # fmt: skip


def test_export_rule_and_grid_charging_are_read_where_the_fleet_api_puts_them():
    assert P.parse_site_info(documented_info()).export_rule == "battery_ok"
    # A failed write is now visible: the read-back sees the rule the site really has.
    assert P.parse_site_info(documented_info(customer_preferred_export_rule="never")).export_rule == "never"
    # A missing disallow flag means the site never restricted grid charging: allowed.
    missing = P.parse_site_info(documented_info(disallow_charge_from_grid_with_solar_installed=None))
    assert missing.grid_charging is True


def test_every_mode_keeps_the_owners_export_rule():
    for mode in (BatteryMode.FORCE_CHARGE, BatteryMode.HOLD, BatteryMode.ECO, BatteryMode.SELF_USE):
        assert P.settings_for(mode, 50, 20, "battery_ok").export_rule == "battery_ok"
