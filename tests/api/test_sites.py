"""The web page's routes: the page itself (public, its own files only), and the site routes it
reads, each limited by role and account like the device routes."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from flexd.bootstrap import page_url
from flexd.config import ApiConfig, Config
from flexd.control.events import Event
from flexd.control.plan import Plan
from flexd.storage import RatedRow
from tests.api.conftest import ADMIN, APP, BILL, NOW, OTHER, auth


async def test_the_page_and_its_files_are_served_without_a_token(api):
    http, _ = api
    r = await http.get("/")
    assert r.status == 200 and r.content_type == "text/html"
    html = await r.text()
    assert '<script src="/web/app.js"' in html and "http" not in html.split("<body>")[0].replace(
        "http-equiv", ""
    )  # nothing loaded from another origin
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        r = await http.get(f"/web/{name}")
        assert r.status == 200 and r.content_type == kind
        assert len(await r.read()) > 1000
    r = await http.get("/web/..%2Fservice.py")
    assert r.status == 404
    r = await http.get("/web/secrets.toml")
    assert r.status == 404 and (await r.json())["error"] == "not-found"


async def test_sites_are_listed_by_account_for_app_tokens_and_all_for_admin(api):
    http, service = api
    r = await http.get("/api/v1/sites", headers=auth(APP))
    doc = await r.json()
    assert r.status == 200 and doc["role"] == "app"
    assert [s["id"] for s in doc["sites"]] == ["home"]
    r = await http.get("/api/v1/sites", headers=auth(ADMIN))
    doc = await r.json()
    assert doc["role"] == "admin" and [s["id"] for s in doc["sites"]] == ["home", "away"]
    home, away = doc["sites"]
    assert (home["online"], home["offline"], home["unknown"]) == (1, 0, 0)
    assert (away["online"], away["unknown"]) == (0, 1)  # never polled
    assert home["plan_age_s"] is None and home["failed_cycles"] == 0
    service.metrics.cycle_failures.inc(site="away")
    service.clock.advance(30 * 10)  # ten missed polls: home's charger is offline now
    r = await http.get("/api/v1/sites", headers=auth(ADMIN))
    home, away = (await r.json())["sites"]
    assert home["offline_devices"] == ["home-charger"] and home["offline"] == 1
    assert away["failed_cycles"] == 1 and home["failed_cycles"] == 0
    assert (await http.get("/api/v1/sites", headers=auth(BILL))).status == 403
    assert (await http.get("/api/v1/sites")).status == 401


async def test_another_accounts_site_is_not_found_exactly_like_an_unknown_one(api):
    http, _ = api
    for path in ("", "/plan", "/energy"):
        theirs = await http.get(f"/api/v1/sites/away{path}", headers=auth(APP))
        unknown = await http.get(f"/api/v1/sites/nope{path}", headers=auth(APP))
        assert theirs.status == unknown.status == 404
        assert (await theirs.json())["detail"] == "site away not found"
        assert (await http.get(f"/api/v1/sites/away{path}", headers=auth(OTHER))).status == 200
        assert (await http.get(f"/api/v1/sites/home{path}", headers=auth(ADMIN))).status == 200
        assert (await http.get(f"/api/v1/sites/home{path}", headers=auth(BILL))).status == 403


async def test_site_now_has_the_tariff_the_loop_published_and_every_device(api):
    http, service = api
    r = await http.get("/api/v1/sites/home", headers=auth(APP))
    doc = await r.json()
    assert doc["tariff_now"] is None  # no loop has published yet
    assert doc["now_local"] == {"time": "19:00", "date": "2026-03-02", "offset": "+0000"}
    view = {"slot_start": "2026-03-02T19:00:00Z", "band": "peak", "import_price_p": 26.6,
            "export_price_p": 12.81, "price_source": "tariff"}  # fmt: skip
    await service.emit(Event("tariff", "home", "home", view))
    doc = await (await http.get("/api/v1/sites/home", headers=auth(APP))).json()
    assert doc["tariff_now"] == view
    [dev] = doc["devices"]
    assert dev["id"] == "home-charger" and dev["health"] == "online" and dev["soc_pct"] == 40.0
    other = await (await http.get("/api/v1/sites/away", headers=auth(OTHER))).json()
    assert other["tariff_now"] is None  # one site's tariff is not another's


def _plan(start: datetime, n: int) -> Plan:
    zeros = (0.0,) * n
    return Plan(
        start=start, slot_minutes=30, objective_p=0.0, status="optimal",
        import_price_p=tuple(float(i) for i in range(n)), export_price_p=zeros,
        grid_import_kwh=zeros, grid_export_kwh=zeros, battery_charge_kwh=zeros,
        battery_discharge_kwh=zeros, battery_soc_kwh=None, battery_capacity_kwh=0.0,
        load_kwh=zeros, pv_kwh=zeros,
        ev_charge_kwh={"home-charger": tuple(1.0 if i == 5 else 0.0 for i in range(n))},
        ev_soc_kwh={"home-charger": tuple(24.0 + (i >= 5) for i in range(n))},
    )  # fmt: skip


async def test_the_plan_shows_24_hours_from_now_in_uk_time_across_the_clock_change(api):
    http, service = api
    # Made at 20:00 UTC on Saturday 28 March 2026, 60 half-hours long; read an hour later.
    made = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)
    service.sites["home"].plan = _plan(made, 60)
    service.sites["home"].plan_made_at = made
    service.clock.set(made + timedelta(hours=1, minutes=10))
    doc = await (await http.get("/api/v1/sites/home/plan", headers=auth(APP))).json()
    assert len(doc["starts"]) == 48  # 24 hours, from the half-hour now
    assert doc["starts"][0] == "2026-03-28T21:00:00Z"
    assert doc["import_price_p"][0] == 2.0  # the plan's third slot
    times = [x["time"] for x in doc["local"]]
    # 01:00 UTC on the 29th is 02:00 BST: the local day has no 01:00 or 01:30.
    assert times[:8] == ["21:00", "21:30", "22:00", "22:30", "23:00", "23:30", "00:00", "00:30"]
    assert times[8] == "02:00" and "01:00" not in times and "01:30" not in times
    assert doc["local"][7]["offset"] == "+0000" and doc["local"][8]["offset"] == "+0100"
    assert doc["plan_made_at"] == "2026-03-28T20:00:00Z"
    ev = doc["evs"]["home-charger"]
    assert len(ev["charge_kwh"]) == 48 and ev["charge_kwh"][3] == 1.0
    assert ev["capacity_kwh"] == 60 and ev["target_soc_pct"] == 80.0
    # The weekend ready-by (09:00) on Sunday the 29th is 08:00 UTC after the change.
    assert ev["ready_by"] == "2026-03-29T08:00:00Z" and ev["ready_by_local"]["time"] == "09:00"
    # A plan running out before 24 hours shows what it has.
    service.clock.set(made + timedelta(hours=20))
    doc = await (await http.get("/api/v1/sites/home/plan", headers=auth(APP))).json()
    assert len(doc["starts"]) == 60 - 40
    # No plan: an empty chart, not an error.
    away = await (await http.get("/api/v1/sites/away/plan", headers=auth(ADMIN))).json()
    assert away["starts"] == [] and away["plan_made_at"] is None


def _rated(start: datetime, register: str, kwh: str, band: str, rate: str, cost: str):
    return RatedRow("M1", start, register, 1, start.date().isoformat(), 1, Decimal(kwh), band,
                    Decimal(rate), Decimal(cost), NOW, "test")  # fmt: skip


async def test_energy_is_summed_by_band_for_today_and_yesterday_in_uk_days(api):
    http, service = api
    today = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # GMT: UK days start at 00:00 UTC
    rows = [
        _rated(today + timedelta(hours=1), "import", "1.10", "off-peak", "7", "7.70"),
        _rated(today + timedelta(hours=2), "import", "2.25", "off-peak", "7", "15.75"),
        _rated(today + timedelta(hours=17), "import", "0.50", "peak", "26.61", "13.31"),
        _rated(today - timedelta(hours=1), "import", "3.00", "off-peak", "7", "21.00"),
        _rated(today - timedelta(days=2), "import", "9.00", "peak", "30", "270.00"),  # older
    ]
    await service.storage.add_rated(rows)
    r = await http.get("/api/v1/sites/home/energy", headers=auth(APP))
    doc = await r.json()
    assert r.status == 200 and [d["date"] for d in doc["days"]] == ["2026-03-02", "2026-03-01"]
    day, yesterday = doc["days"]
    assert day["bands"] == [
        {"register": "import", "band": "off-peak", "kwh": "3.35", "cost_p": "23.45"},
        {"register": "import", "band": "peak", "kwh": "0.50", "cost_p": "13.31"},
    ]
    assert day["total_cost_p"] == "36.76" and day["slots"] == 3
    assert yesterday["bands"] == [
        {"register": "import", "band": "off-peak", "kwh": "3.00", "cost_p": "21.00"}
    ]
    other = await (await http.get("/api/v1/sites/away/energy", headers=auth(OTHER))).json()
    assert all(d["bands"] == [] for d in other["days"])  # another meter's slots are not theirs


def test_page_url_names_a_reachable_address():
    cfg = Config("x.sqlite", api=ApiConfig(host="0.0.0.0"))
    assert page_url(cfg, 8080) == "http://127.0.0.1:8080/"
    assert page_url(Config("x.sqlite", api=ApiConfig(host="::1")), 9) == "http://[::1]:9/"


def test_flexd_demo_prints_the_page_url(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "flexd", "demo", "--hours", "0.5",
         "--database", str(tmp_path / "demo.sqlite")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [x for x in out.stdout.splitlines() if x.startswith("web page: ")]
    assert len(lines) == 1 and lines[0].startswith("web page: http://127.0.0.1:"), out.stdout[:500]


async def test_every_site_answer_has_the_shape_the_openapi_document_gives(api):
    import jsonschema

    http, service = api
    doc = await (await http.get("/api/v1/openapi.json")).json()
    service.sites["home"].plan = _plan(NOW, 60)
    for path, concrete in (("/api/v1/sites", "/api/v1/sites"),
                           ("/api/v1/sites/{site}", "/api/v1/sites/home"),
                           ("/api/v1/sites/{site}/plan", "/api/v1/sites/home/plan"),
                           ("/api/v1/sites/{site}/plan", "/api/v1/sites/away/plan"),  # no plan
                           ("/api/v1/sites/{site}/energy", "/api/v1/sites/home/energy")):  # fmt: skip
        schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        r = await http.get(concrete, headers=auth(ADMIN))
        assert r.status == 200, concrete
        jsonschema.validate(await r.json(), schema)
