"""Billing and dispatch routes through a real server: readings in, rated slots out."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from flexd.storage import RatedRow
from tests.api.conftest import ADMIN, APP, BILL, NOW, auth

URL = "/api/v1/meters/M1/readings"
RATED = "/api/v1/meters/M1/rated-slots"
HEADER = "meter,start,settlement_date,settlement_period,register,kwh,band,unit_rate_p,cost_p"


def rated(start, version, cost="12.34"):
    return RatedRow(
        "M1", start, "import", version, "2026-03-01", 1, Decimal("0.52"), "off-peak",
        Decimal("7.50"), Decimal(cost), NOW, "test",
    )  # fmt: skip


async def test_readings_upsert_is_idempotent(api):
    http, _ = api
    body = {"readings": [{"start": "2026-03-01T00:00:00+00:00", "kwh": "0.52"},
                         {"start": "2026-03-01T00:30:00Z", "kwh": 0.4, "register": "export"}]}  # fmt: skip
    r = await http.post(URL, headers=auth(BILL), json=body)
    assert (r.status, (await r.json())["received"]) == (200, 2)
    r = await http.post(URL, headers=auth(BILL), json=body)
    assert (await r.json())["changed"] == 0


async def test_bad_batch_rejected_whole_with_every_reason(api):
    http, _ = api
    body = {"readings": [
        {"start": "2026-03-01T00:00:00+00:00", "kwh": "0.52"},
        {"start": "2026-03-01T00:10:00+00:00", "kwh": "1"},
        {"start": "2026-03-01T01:00:00", "kwh": "1"},
        {"start": "2026-03-01T01:30:00Z", "kwh": "-1"},
        {"start": "2026-03-01T02:00:00Z", "kwh": "1", "register": "gas"},
        {"start": "2026-03-01T00:00:00Z", "kwh": "0.1"},
    ]}  # fmt: skip
    r = await http.post(URL, headers=auth(BILL), json=body)
    assert r.status == 422
    fields = [p["field"] for p in (await r.json())["problems"]]
    assert fields == ["readings[1].start", "readings[2].start", "readings[3].kwh",
                      "readings[4].register", "readings[5]"]  # fmt: skip
    r = await http.post(URL, headers=auth(BILL), json={"readings": body["readings"][:1]})
    assert (await r.json())["changed"] == 1  # nothing from the bad batch was stored


@pytest.mark.parametrize("token", [APP, None])
async def test_meters_refused_to_app_and_anonymous(api, token):
    http, _ = api
    r = await http.post(URL, headers=auth(token) if token else {}, json={"readings": []})
    assert r.status == (403 if token else 401)


async def test_unknown_meter_404(api):
    http, _ = api
    r = await http.post("/api/v1/meters/NOPE/readings", headers=auth(BILL), json={"readings": []})
    assert r.status == 404


async def test_rated_slots_json_and_csv(api):
    http, service = api
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    await service.storage.add_rated([rated(t0, 1, "1.00")])
    await service.storage.add_rated([rated(t0, 2, "2.00")])
    q = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z"}
    slots = (await (await http.get(RATED, headers=auth(BILL), params=q)).json())["slots"]
    assert [s["cost_p"] for s in slots] == ["2.00"]
    r = await http.get(RATED, headers={**auth(BILL), "Accept": "text/csv"}, params=q)
    lines = (await r.text()).splitlines()
    assert lines[0] == HEADER
    assert next(csv.reader(io.StringIO(lines[1]))) == [
        "M1", "2026-03-01T00:00:00Z", "2026-03-01", "1", "import", "0.52", "off-peak", "7.50",
        "2.00",
    ]  # fmt: skip
    r = await http.get(RATED, headers={**auth(ADMIN), "Accept": "text/csv"},
                       params={**q, "version": "all"})  # fmt: skip
    lines = (await r.text()).splitlines()
    assert lines[0] == HEADER + ",version"
    assert [ln.rsplit(",", 1)[1] for ln in lines[1:]] == ["1", "2"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "2026-03-02T00:00:00Z"}, "from"),
        ({"from": "2026-03-01T00:00:00", "to": "2026-03-02T00:00:00Z"}, "from"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "to"),
        ({"from": "2026-03-01T00:00Z", "to": "2026-03-02T00:00Z", "version": "x"}, "version"),
    ],
)
async def test_rated_slots_bad_query_422(api, params, field):
    http, _ = api
    r = await http.get(RATED, headers=auth(BILL), params=params)
    assert (r.status, (await r.json())["field"]) == (422, field)


async def test_dispatches_filter(api):
    http, _ = api
    await http.post("/api/v1/devices/home-charger/bump-charge", headers=auth(APP))
    url = "/api/v1/devices/home-charger/dispatches"
    r = await http.get(url, headers=auth(APP), params={"status": "planned"})
    assert [d["type"] for d in (await r.json())["dispatches"]] == ["BOOST"]
    later = (NOW + timedelta(days=1)).isoformat()
    r = await http.get(url, headers=auth(APP), params={"from": later})
    assert (await r.json())["dispatches"] == []
    r = await http.get(url, headers=auth(APP), params={"status": "done"})
    assert (r.status, (await r.json())["field"]) == (422, "status")
    r = await http.get(url, headers=auth(BILL))
    assert r.status == 403
