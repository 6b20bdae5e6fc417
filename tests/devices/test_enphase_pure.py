"""Enphase payloads (parsed with pyenphase's models), the storage settings built for each
mode, and the cloud reverting a local setting, against the simulated gateway."""

from datetime import UTC, datetime

import pytest

from core.clock import ManualClock
from devices.base import BatteryMode, SetBatteryMode, SetReserve
from devices.enphase import api as E
from devices.errors import BadPayload, NotSupported
from tests.devices.harness_enphase import make_pair

METERS = [
    {"eid": 1, "state": "enabled", "measurementType": "production", "phaseMode": "single",
     "phaseCount": 1, "meteringStatus": "normal", "statusFlags": []},
    {"eid": 2, "state": "enabled", "measurementType": "net-consumption", "phaseMode": "single",
     "phaseCount": 1, "meteringStatus": "normal", "statusFlags": []},
]  # fmt: skip


def reading(eid, power, dlvd=0.0, rcvd=0.0):
    return {"eid": eid, "timestamp": 1, "actEnergyDlvd": dlvd, "actEnergyRcvd": rcvd,
            "activePower": power, "pwrFactor": 1.0, "voltage": 240.0, "current": 1.0, "freq": 50.0}  # fmt: skip


def test_meters_signs_and_lifetime_energy():
    m = E.parse_meters(METERS, [reading(1, 2400.0), reading(2, -900.4, 12345.6, 789.0)])
    assert m.pv_w == 2400 and m.grid_w == -900  # exporting
    assert m.import_kwh == pytest.approx(12.346) and m.export_kwh == pytest.approx(0.789)


def test_no_net_consumption_ct_is_bad_payload():
    with pytest.raises(BadPayload, match="no enabled net- or total-consumption CT"):
        E.parse_meters(METERS[:1], [reading(1, 2400.0)])
    with pytest.raises(BadPayload, match="actEnergyDlvd"):
        E.parse_meters(METERS, [{"eid": 2, "timestamp": 1}])


def secctrl(soc=64, cap=10080):
    return {"ENC_agg_soc": soc, "ENC_agg_avail_energy": 6451, "ENC_agg_backup_energy": 0,
            "adjusted_backup_soc": 20, "configured_backup_soc": 20,
            "Enc_max_available_capacity": cap}  # fmt: skip


def test_battery_power_is_summed_over_units_in_watts():
    power = {"devices:": [{"real_power_mw": 1500000, "apparent_power_mva": 1, "soc": 64},
                          {"real_power_mw": -250000, "apparent_power_mva": 1, "soc": 64}]}  # fmt: skip
    b = E.parse_battery(secctrl(), power)
    assert (b.soc_pct, b.capacity_kwh, b.power_w) == (64.0, 10.08, 1250.0)
    with pytest.raises(BadPayload, match="outside"):
        E.parse_battery(secctrl(soc=140), power)
    with pytest.raises(BadPayload, match="devices"):
        E.parse_battery(secctrl(), {"devices": []})


def tariff(mode="self-consumption", reserve=20, grid=False):
    return {"tariff": {"currency": {"code": "GBP"}, "single_rate": {"rate": 0.2}, "seasons": [],
                       "storage_settings": {"mode": mode, "operation_mode_sub_type": "",
                                            "reserved_soc": reserve, "very_low_soc": 5,
                                            "charge_from_grid": grid}}}  # fmt: skip


@pytest.mark.parametrize(("mode", "want"), [
    (BatteryMode.SELF_USE, ("self-consumption", 30.0, False)),
    (BatteryMode.ECO, ("economy", 30.0, False)),
    (BatteryMode.HOLD, ("self-consumption", 64.0, False)),
    (BatteryMode.FORCE_CHARGE, ("backup", 30.0, True)),
])  # fmt: skip
def test_storage_for_each_mode_and_back(mode, want):
    s = E.storage_for(mode, 63.7, 30.0)
    assert (s.mode.value, s.reserve_pct, s.charge_from_grid) == want
    assert E.mode_of(s, 64.0 if mode == BatteryMode.HOLD else None) == mode


def test_export_is_not_supported():
    with pytest.raises(NotSupported):
        E.storage_for(BatteryMode.FORCE_DISCHARGE, 50, 20)


def test_tariff_with_keeps_the_rest_of_the_document():
    doc = E.tariff_with(tariff(), E.storage_for(BatteryMode.FORCE_CHARGE, 50, 25))
    assert doc["tariff"]["single_rate"] == {"rate": 0.2}
    ss = doc["tariff"]["storage_settings"]
    assert (ss["mode"], ss["reserved_soc"], ss["charge_from_grid"], ss["very_low_soc"]) == (
        "backup", 25, True, 5)  # fmt: skip
    assert E.Storage.of(E.parse_storage(tariff(mode="savings-mode"))).mode.value == "economy"


T0 = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)


async def test_cloud_revert_is_detected_and_the_setting_put_back():
    pair = await make_pair(ManualClock(T0))
    try:
        pair.faults.revert_after_s = 180
        assert (await pair.adapter.apply(SetReserve(40))).honoured
        assert (await pair.adapter.apply(SetBatteryMode(BatteryMode.FORCE_CHARGE, 3000))).honoured
        pair.clock.advance(240)  # the cloud has put its copy back by now
        s = await pair.adapter.read_state()
        assert pair.adapter.reverts_detected == 1
        assert s.mode == BatteryMode.FORCE_CHARGE
        assert pair.world.mode == BatteryMode.FORCE_CHARGE  # re-applied on the gateway
        sim_storage = (await pair.adapter._get(E.URL_TARIFF))["tariff"]["storage_settings"]
        assert sim_storage["mode"] == "backup" and sim_storage["charge_from_grid"] is True
        pair.faults.revert_after_s = None
        pair.clock.advance(600)
        await pair.adapter.read_state()
        assert pair.adapter.reverts_detected == 1  # nothing more to put back
    finally:
        await pair.close()


async def test_hold_keeps_the_charge_in_the_evening():
    pair = await make_pair(ManualClock(T0))
    try:
        before = await pair.adapter.read_state()
        assert (await pair.adapter.apply(SetBatteryMode(BatteryMode.HOLD))).honoured
        pair.clock.advance(30 * 60)
        s = await pair.adapter.read_state()
        assert s.mode == BatteryMode.HOLD and s.battery_w == pytest.approx(0, abs=1)
        assert s.grid_w > 300 and s.load_w == pytest.approx(s.grid_w + s.pv_w, abs=1)
        assert s.battery_soc_pct == pytest.approx(before.battery_soc_pct, abs=1)
    finally:
        await pair.close()
