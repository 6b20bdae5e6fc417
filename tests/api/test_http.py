"""The HTTP API through a real aiohttp server on loopback with a real SQLite store."""

import pytest

from devices.base import ChargerState, ChargerStatus
from tests.api.conftest import ADMIN, APP, BILL, NOW, OTHER, auth


async def test_healthz_and_metrics_need_no_token(api):
    http, _ = api
    assert (await http.get("/healthz")).status == 200
    r = await http.get("/metrics")
    assert 'flexd_api_requests_total{route="/healthz",status="200"} 1' in await r.text()


async def test_readyz_503_before_prices_known(api):
    http, _ = api
    r = await http.get("/readyz")
    assert r.status == 503
    assert (await r.json())["prices_known"] is False


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic x"])
async def test_401_without_valid_token(api, header):
    http, _ = api
    r = await http.get("/api/v1/devices", headers={"Authorization": header} if header else {})
    assert r.status == 401
    assert (await r.json())["error"] == "unauthorized"


async def test_app_sees_only_its_account(api):
    http, _ = api
    r = await http.get("/api/v1/devices", headers=auth(APP))
    assert [d["id"] for d in (await r.json())["devices"]] == ["home-charger"]
    r = await http.get("/api/v1/devices", headers=auth(ADMIN))
    assert len((await r.json())["devices"]) == 2


@pytest.mark.parametrize(
    ("token", "path"),
    [
        (BILL, "/api/v1/devices"),
        (BILL, "/api/v1/devices/home-charger/preferences"),
    ],
)
async def test_403_outside_role_or_account(api, token, path):
    http, _ = api
    assert (await http.get(path, headers=auth(token))).status == 403


async def test_another_accounts_device_is_404_like_an_unknown_one(api):
    http, _ = api
    for path in ("/api/v1/devices/home-charger", "/api/v1/devices/home-charger/dispatches",
                 "/api/v1/devices/home-charger/preferences"):  # fmt: skip
        theirs = await http.get(path, headers=auth(OTHER))
        unknown = await http.get(path.replace("home-charger", "nope"), headers=auth(OTHER))
        assert (theirs.status, await theirs.json()) == (404, {"error": "not-found",
            "detail": "device home-charger not found", "field": None})  # fmt: skip
        assert unknown.status == 404
        assert (await unknown.json())["detail"] == "device nope not found"


async def test_metrics_hide_meters_and_devices_without_an_admin_token(api):
    http, service = api
    service.metrics.device_polls.inc(device="home-charger")
    service.metrics.rated_slots.inc(3, meter="M1")
    anonymous = await (await http.get("/metrics")).text()
    assert "home-charger" not in anonymous and "M1" not in anonymous and "A1" not in anonymous
    assert "flexd_device_polls_total 1" in anonymous and "flexd_rated_slots_total 3" in anonymous
    for token in (APP, BILL):
        assert "home-charger" not in await (await http.get("/metrics", headers=auth(token))).text()
    admin = await (await http.get("/metrics", headers=auth(ADMIN))).text()
    assert 'flexd_device_polls_total{device="home-charger"} 1' in admin


async def test_a_5xx_is_counted_and_answered_as_json(api):
    http, service = api

    async def broken(*_a, **_k):
        raise RuntimeError("disk on fire")

    service.readiness = broken  # a bug behind a route
    r = await http.get("/readyz")
    assert (r.status, (await r.json())["error"]) == (500, "internal")
    text = await (await http.get("/metrics")).text()
    assert 'flexd_api_requests_total{route="/readyz",status="500"} 1' in text


async def test_405_names_the_allowed_methods(api):
    http, _ = api
    r = await http.delete("/api/v1/devices", headers=auth(ADMIN))
    assert r.status == 405 and set(r.headers["Allow"].split(",")) >= {"GET"}


async def test_unknown_device_404(api):
    http, _ = api
    r = await http.get("/api/v1/devices/nope", headers=auth(ADMIN))
    assert r.status == 404
    assert (await r.json())["error"] == "not-found"


async def test_bump_is_idempotent(api):
    http, service = api
    h = {**auth(APP), "Idempotency-Key": "tap-1"}
    r1 = await http.post("/api/v1/devices/home-charger/bump-charge", headers=h, json={})
    r2 = await http.post("/api/v1/devices/home-charger/bump-charge", headers=h, json={})
    assert (r1.status, r2.status) == (202, 202)
    assert (await r1.json()) == (await r2.json())
    assert len(await service.storage.dispatches(device_id="home-charger", kind="boost")) == 1


async def test_bump_twice_without_key_409_then_cancel(api):
    http, _ = api
    url = "/api/v1/devices/home-charger/bump-charge"
    assert (await http.post(url, headers=auth(APP))).status == 202
    r = await http.post(url, headers=auth(APP))
    assert r.status == 409
    assert (await r.json())["error"] == "already-boosting"
    assert (await http.delete(url, headers=auth(APP))).status == 200
    r = await http.delete(url, headers=auth(APP))
    assert (await r.json())["error"] == "not-boosting"


async def test_bump_not_plugged_in_409(api):
    http, service = api
    dev = service.device("home-charger")
    dev.state = ChargerState(NOW, False, 0.0, 0.0, 10.0, ChargerStatus.AVAILABLE)
    r = await http.post("/api/v1/devices/home-charger/bump-charge", headers=auth(APP))
    assert (r.status, (await r.json())["error"]) == (409, "not-plugged-in")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target_soc_pct": "x"}, "target_soc_pct"),
        ({"target_soc_pct": 150}, "target_soc_pct"),
        ({"duration_minutes": 1.5}, "duration_minutes"),
        ([], "body"),
    ],
)
async def test_bump_bad_input_422(api, body, field):
    http, _ = api
    r = await http.post("/api/v1/devices/home-charger/bump-charge", headers=auth(APP), json=body)
    assert r.status == 422
    assert (await r.json())["field"] == field


async def test_preferences_roundtrip_and_validation(api):
    http, _ = api
    url = "/api/v1/devices/home-charger/preferences"
    r = await http.put(url, headers=auth(APP), json={"weekday_ready_by": "06:30"})
    assert r.status == 200
    assert (await (await http.get(url, headers=auth(APP))).json())["weekday_ready_by"] == "06:30"
    r = await http.put(url, headers=auth(APP), json={"weekday_ready_by": "12:00"})
    assert r.status == 422
    assert (await r.json())["field"] == "weekday_ready_by"
    r = await http.put(url, headers=auth(APP), data=b"{nope")
    assert (r.status, (await r.json())["field"]) == (422, "body")


async def test_body_too_large_413(api):
    http, _ = api
    r = await http.put(
        "/api/v1/devices/home-charger/preferences", headers=auth(APP), data=b"x" * 5000
    )
    assert r.status == 413


async def test_openapi_matches_routes(api):
    http, service = api
    from flexd.api.app import build_app

    r = await http.get("/api/v1/openapi.json")
    doc = await r.json()
    documented = {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops}
    app = build_app(service, service.config.api)
    real = {
        (route.resource.canonical, route.method)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    assert documented == real
