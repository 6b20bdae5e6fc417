"""Enphase payloads captured from real gateways (pyenphase's test fixtures in
../shared/extval-fixtures/enphase, never copied here), through flexd's parsers."""

import json
import math

import pytest

from devices.enphase import api as E


def load(extval, firmware, name):
    return json.loads((extval / "enphase" / firmware / name).read_text())


def test_a_site_whose_only_consumption_ct_is_total_consumption_is_read(extval):
    """8.3.5433: production + total-consumption CTs and no net-consumption CT; it was refused.
    The house is the total-consumption CT, the grid what the house takes beyond PV and battery."""
    fw = "8.3.5433_tot_is_net_cons"
    meters = E.parse_meters(load(extval, fw, "ivp_meters"), load(extval, fw, "ivp_meters_readings"))
    readings = {r["eid"]: r for r in load(extval, fw, "ivp_meters_readings")}
    kinds = {m["eid"]: m["measurementType"] for m in load(extval, fw, "ivp_meters")}
    house = next(readings[e]["activePower"] for e, k in kinds.items() if k == "total-consumption")
    pv = next(readings[e]["activePower"] for e, k in kinds.items() if k == "production")
    # pyenphase rounds a CT's active power to the watt
    assert meters.house_w == round(house) and meters.pv_w == round(pv)
    assert meters.grid_with(battery_w=0.0) == round(house) - round(pv)
    assert meters.grid_with(battery_w=200.0) == round(house) - round(pv) - 200
    assert meters.import_kwh is None and meters.export_kwh is None  # no grid register


def test_net_consumption_sites_still_read_the_grid_ct(extval):
    fw = "8.2.4382_ACB"
    meters = E.parse_meters(load(extval, fw, "ivp_meters"), load(extval, fw, "ivp_meters_readings"))
    assert meters.house_w is None and meters.grid_w is not None and not math.isnan(meters.grid_w)
    assert meters.import_kwh is not None


def test_mixed_iq_and_ac_batteries_count_the_ac_battery(extval):
    """8.2.4382_ACB: IQ Battery 3.5 kWh at 54 % and AC Batteries at 25 %; the combined
    aggregate is 39 % of 7.22 kWh. The IQ-only figures (54 % of 3.5 kWh) left the ACB out."""
    fw = "8.2.4382_ACB"
    sec = load(extval, fw, "ivp_ensemble_secctrl")
    b = E.parse_battery(sec, load(extval, fw, "ivp_ensemble_power"))
    assert b.soc_pct == sec["agg_soc"] == 39
    assert b.capacity_kwh == pytest.approx(sec["Max_energy"] / 1000) == pytest.approx(7.22)
    assert b.capacity_kwh > sec["Enc_max_available_capacity"] / 1000


def test_an_ac_battery_only_site_is_read(extval):
    fw = "8.3.5169_ACB_inventory"  # no IQ Battery at all: Enc_max_available_capacity is 0
    b = E.parse_battery(load(extval, fw, "ivp_ensemble_secctrl"),
                        load(extval, fw, "ivp_ensemble_power"))  # fmt: skip
    assert b.capacity_kwh == pytest.approx(2.48) and b.power_w == 0


def test_a_site_with_no_battery_is_refused_clearly(extval):
    fw = "7.6.175_with_cts"
    with pytest.raises(E.BadPayload, match="no battery capacity"):
        E.parse_battery(load(extval, fw, "ivp_ensemble_secctrl"),
                        load(extval, fw, "ivp_ensemble_power"))  # fmt: skip


def test_a_total_consumption_ct_without_a_production_ct_is_refused(extval):
    fw = "8.3.5433_tot_is_net_cons"
    meters = [m for m in load(extval, fw, "ivp_meters") if m["measurementType"] != "production"]
    with pytest.raises(E.BadPayload, match="without a production CT"):
        E.parse_meters(meters, load(extval, fw, "ivp_meters_readings"))
