"""Implausible readings through the API: 422 naming the row and field, nothing stored, and the
meter's later valid readings still rate."""

from datetime import timedelta

import pytest

from flexd.energy.rater import Rater
from flexd.obs.metrics import Metrics
from rating import load_tariff
from tests.api.conftest import BILL, NOW, auth

URL = "/api/v1/meters/M1/readings"
OK = {"start": "2026-03-01T00:00:00Z", "kwh": "0.52"}


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        ({"start": "2026-03-01T00:30:00Z", "kwh": 1e308}, "readings[1].kwh", "above the plausible maximum"),
        ({"start": "2026-03-01T00:30:00Z", "kwh": "9" * 400}, "readings[1].kwh", "not a plausible number"),
        ({"start": "2026-03-01T00:30:00Z", "kwh": "65.534"}, "readings[1].kwh", "above the plausible maximum of 30"),
        ({"start": "2026-03-01T00:30:00Z", "kwh": "NaN"}, "readings[1].kwh", "not a number"),
        ({"start": "9999-12-31T23:30:00Z", "kwh": "0.1"}, "readings[1].start", "outside 1990..2099"),
        ({"start": "0001-01-01T00:00:00Z", "kwh": "0.1"}, "readings[1].start", "outside 1990..2099"),
        ({"start": (NOW + timedelta(days=730)).isoformat(), "kwh": "0.1"}, "readings[1].start", "after the current half-hour"),
        ({"start": (NOW + timedelta(hours=1)).isoformat(), "kwh": "0.1"}, "readings[1].start", "after the current half-hour"),
        ({"start": (NOW - timedelta(days=800)).isoformat(), "kwh": "0.1"}, "readings[1].start", "before the accepted window"),
    ],
)  # fmt: skip
async def test_implausible_readings_are_refused_whole_batch(api, bad, field, reason):
    http, service = api
    r = await http.post(URL, headers=auth(BILL), json={"readings": [OK, bad]})
    doc = await r.json()
    assert r.status == 422 and doc["field"] == field and reason in doc["problems"][0]["reason"]
    assert await service.storage.readings("M1", NOW - timedelta(days=3650), NOW) == []


async def test_the_current_half_hour_is_accepted(api):
    http, _ = api
    r = await http.post(URL, headers=auth(BILL),
                        json={"readings": [{"start": NOW.isoformat(), "kwh": "0.3"}]})  # fmt: skip
    assert r.status == 200


async def test_deeply_nested_json_is_a_422_not_a_500(api):
    http, _ = api
    r = await http.post(URL, headers=auth(BILL) | {"Content-Type": "application/json"},
                        data=b"[" * 900 + b"]" * 900)  # fmt: skip
    assert r.status in (413, 422)


async def test_a_refused_batch_does_not_poison_the_day(api):
    http, service = api
    service.rater = Rater(service.storage, service.clock, Metrics(), {"M1": load_tariff("io-go")})
    bad = {"readings": [OK, {"start": "2026-03-01T00:30:00Z", "kwh": 1e308}]}
    assert (await http.post(URL, headers=auth(BILL), json=bad)).status == 422
    good = {"readings": [OK, {"start": "2026-03-01T00:30:00Z", "kwh": "0.4"}]}
    assert (await http.post(URL, headers=auth(BILL), json=good)).status == 200
    rated = await service.storage.latest_rated("M1", NOW - timedelta(days=2), NOW)
    assert {r.register for r in rated} >= {"import"} and len([r for r in rated if r.register == "import"]) == 2
