"""Parsing vehicle_data answers, without a socket."""

from datetime import UTC, datetime

import pytest

from devices.errors import BadPayload
from devices.vehicle_api import parse_vehicle_data


def body(**cs):
    base = {"battery_level": 57, "charging_state": "Charging", "charge_limit_soc": 80, "timestamp": 1768519800000}
    return {"response": {"charge_state": base | cs}}


def test_parses_soc_instant_and_limit():
    v = parse_vehicle_data(body())
    assert v.soc_pct == 57.0 and v.charge_limit_soc_pct == 80.0 and v.charging_state == "Charging"
    assert v.measured_at == datetime(2026, 1, 15, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "response"),
        ({"response": {}}, "charge_state"),
        (body(battery_level=101), "battery_level"),
        (body(battery_level="57"), "battery_level"),
        (body(battery_level=True), "battery_level"),
        (body(timestamp=None), "timestamp"),
        (body(timestamp=0), "timestamp"),
        (body(charge_limit_soc="80"), "charge_limit_soc"),
    ],
)
def test_bad_payload_names_the_field(payload, field):
    with pytest.raises(BadPayload, match=field):
        parse_vehicle_data(payload)
