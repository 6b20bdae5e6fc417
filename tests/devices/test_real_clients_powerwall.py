"""pypowerwall, the community's Powerwall client, reads flexd's Powerwall simulator as a gateway.

Local mode: pypowerwall posts a form-encoded login, keeps the ``AuthCookie``/``UserRecord``
cookies and reads ``/api/status``, ``/api/site_info/site_name``, the meter aggregates, the state
of energy and ``/api/operation`` over HTTPS. It accepts any ``host:port`` but never verifies the
certificate (``verify=False`` in pypowerwall/local/pypowerwall_local.py: gateways are
self-signed), so the TLS here is real but unauthenticated, as on a real LAN.

Fleet site_info: ``pypowerwall.fleetapi.fleetapi.FleetAPI`` takes its base URL from its config
file's ``AUDIENCE``, so it is pointed at the simulator's Fleet-shaped routes; its requests path
(``PW_FLEETAPI_HTTP=1.1``) trusts the simulator's certificate through ``REQUESTS_CA_BUNDLE``.

pypowerwall is synchronous (requests), so it runs in a worker thread while the simulator serves
on the test's event loop. The clock is manual, so the world does not move between reads.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.clock import ManualClock
from devices.powerwall import api as P
from simulator.powerwall import PowerwallSimulator, powerwall_world

pypowerwall = pytest.importorskip("pypowerwall")
fleetapi = pytest.importorskip("pypowerwall.fleetapi.fleetapi")
LoginError = pytest.importorskip("pypowerwall.local.exceptions").LoginError

# Midday in June: the PV bell is high, so solar, load and battery all carry distinct numbers.
NOON = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sim() -> AsyncIterator[PowerwallSimulator]:
    world = powerwall_world(ManualClock(NOON))
    world.battery.soc_kwh = 9.45  # 70 % of 13.5 kWh usable: 71.5 % on the gateway's scale
    s = PowerwallSimulator(world)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


def _local_reads(port: int, password: str, cachefile: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # urllib3's InsecureRequestWarning for verify=False
        pw = pypowerwall.Powerwall(
            host=f"127.0.0.1:{port}", password=password, email="owner@example.org",
            timezone="Europe/London", cachefile=str(cachefile), pwcacheexpire=0,
            authmode="cookie", failover=False, timeout=5,
        )  # fmt: skip
        got = {
            "connected": pw.is_connected(), "mode": pw.mode,
            "din": pw.din(), "version": pw.version(), "site_name": pw.site_name(),
            "level": pw.level(), "level_app": pw.level(scale=True), "power": pw.power(),
            "reserve": pw.get_reserve(), "real_mode": pw.get_mode(),
            "site_info": pw.poll("/api/site_info"),
        }  # fmt: skip
        # pypowerwall logs in lazily, on the first 401 of a read that needs a session.
        got["auth"] = dict(pw.client.auth or {})
        return got


async def test_pypowerwall_local_mode_reads_the_world(sim: PowerwallSimulator, tmp_path: Path) -> None:
    got = await asyncio.to_thread(_local_reads, sim.site.port, sim.password, tmp_path / "pw.auth")
    world, snap = sim.world, sim.world.snapshot()
    assert got["connected"] and got["mode"] == "local"
    # The cookies of the form-encoded login, as pypowerwall keeps them.
    assert set(got["auth"]) == {"AuthCookie", "UserRecord"}
    assert got["din"] == sim.din and got["version"] == sim.firmware
    assert got["site_name"] == sim.site_name
    # SoC: the gateway's raw percentage, and pypowerwall's own hidden-reserve rescale.
    assert got["level"] == pytest.approx(P.gateway_from_usable(world.battery.soc_pct))
    assert got["level_app"] == pytest.approx(world.battery.soc_pct)
    assert got["level_app"] == pytest.approx(70.0)
    # Power: pypowerwall's four flows in the gateway's signs, which are flexd's.
    power = got["power"]
    assert power["site"] == pytest.approx(snap.grid_w)
    assert power["solar"] == pytest.approx(snap.pv_w) and snap.pv_w > 1000
    assert power["battery"] == pytest.approx(snap.battery_w)
    assert power["load"] == pytest.approx(snap.load_w)
    assert got["reserve"] == pytest.approx(sim.settings.backup_reserve_pct)
    assert got["real_mode"] == sim.settings.mode
    assert got["site_info"]["nominal_system_energy_kWh"] == pytest.approx(world.battery.capacity_kwh)


def _wrong_password(port: int, cachefile: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pw = pypowerwall.Powerwall(
            host=f"127.0.0.1:{port}", password="not-it", email="owner@example.org",
            timezone="Europe/London", cachefile=str(cachefile), failover=False, timeout=5,
        )  # fmt: skip
        pw.level()  # the first read that needs a session logs in, and the 401 raises


async def test_pypowerwall_is_refused_with_a_wrong_password(sim: PowerwallSimulator, tmp_path: Path) -> None:
    with pytest.raises(LoginError, match="Invalid Powerwall Login"):
        await asyncio.to_thread(_wrong_password, sim.site.port, tmp_path / "pw.auth")


def _fleet_reads(config: Path, site_id: str) -> dict[str, Any]:
    api = fleetapi.FleetAPI(configfile=str(config), site_id=site_id, pwcacheexpire=0)
    return {
        "site_info": api.get_site_info(force=True), "mode": api.get_operating_mode(force=True),
        "reserve": api.get_battery_reserve(force=True),
        "grid_charging": api.get_grid_charging(force=True),
        "export": api.get_grid_export(force=True),
    }  # fmt: skip


async def test_pypowerwall_fleetapi_reads_site_info(
    sim: PowerwallSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW_FLEETAPI_HTTP", "1.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sim.site.cafile))
    # An owner's settings that differ from every default pypowerwall would fall back to.
    sim.settings = P.SiteSettings("autonomous", 35.0, True, "battery_ok")
    config = tmp_path / "fleet.json"
    config.write_text(json.dumps({
        "AUDIENCE": sim.site.base_url, "access_token": sim.fleet_token, "site_id": sim.site_id,
        "CLIENT_ID": "sim", "CLIENT_SECRET": "sim", "DOMAIN": "example.org",
        "REDIRECT_URI": "https://example.org/access", "refresh_token": "",
    }))  # fmt: skip
    got = await asyncio.to_thread(_fleet_reads, config, sim.site_id)
    assert got["site_info"]["id"] == sim.site_id
    assert got["mode"] == "autonomous" and got["reserve"] == pytest.approx(35.0)
    assert got["grid_charging"] is True and got["export"] == "battery_ok"
    sim.settings = P.SiteSettings("self_consumption", 20.0, False, "pv_only")
    got = await asyncio.to_thread(_fleet_reads, config, sim.site_id)
    assert got["mode"] == "self_consumption" and got["reserve"] == pytest.approx(20.0)
    assert got["grid_charging"] is False and got["export"] == "pv_only"
