"""A real aiohttp server on loopback over a real SQLite store, with tokens for every role."""

from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiohttp
import pytest

from core.clock import ManualClock
from devices.base import ChargerState, ChargerStatus
from flexd.api.app import bound_port, start_api
from flexd.config import hash_token, parse_config
from flexd.control.runtime import build_sites
from flexd.service import Service
from flexd.storage import Storage
from tests.pg import pg_database

NOW = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)
APP, OTHER, BILL, ADMIN = "app-secret", "other-secret", "bill-secret", "admin-secret"


def _site(sid, account, meter):
    return {"id": sid, "meter": meter, "tariff": "io-go", "account": account,
            "devices": [{"id": f"{sid}-charger", "brand": "ocpp", "charge_point_id": sid,
                         "simulate": True,
                         "ev": {"capacity_kwh": 60, "max_charge_kw": 7.4, "efficiency": 0.9,
                                "initial_soc_pct": 25, "plug_in_local": "18:00"}}]}  # fmt: skip


@asynccontextmanager
async def serve(tmp_path, database, max_body_bytes=2048):
    """The API over a store at ``database`` (a SQLite path or a PostgreSQL URL)."""
    tokens = [
        {"name": "app", "role": "app", "account": "A1", "sha256": hash_token(APP)},
        {"name": "other", "role": "app", "account": "A2", "sha256": hash_token(OTHER)},
        {"name": "bill", "role": "billing", "sha256": hash_token(BILL)},
        {"name": "admin", "role": "admin", "sha256": hash_token(ADMIN)},
    ]
    doc = {
        "daemon": {"database": str(database)},
        "api": {"port": 0, "tokens": tokens, "max_body_bytes": max_body_bytes},
        "sites": [_site("home", "A1", "M1"), _site("away", "A2", "M2")],
    }
    cfg = parse_config(doc, tmp_path, env={})
    storage = await Storage.open(cfg.database)
    clock = ManualClock(NOW)
    sites = build_sites(cfg.sites)
    service = Service(cfg, storage, clock, sites)
    dev = service.device("home-charger")
    dev.state = ChargerState(NOW, True, 0.0, 0.0, 10.0, ChargerStatus.SUSPENDED_EV, 40.0)
    dev.last_ok = NOW
    service.resolve_ev_soc(dev, NOW)
    runner = await start_api(service, cfg.api)
    base = f"http://127.0.0.1:{bound_port(runner)}"
    try:
        async with aiohttp.ClientSession(base) as http:
            yield http, service
    finally:
        await runner.cleanup()
        await storage.close()


@pytest.fixture
async def api(tmp_path):
    async with serve(tmp_path, tmp_path / "f.sqlite") as pair:
        yield pair


@pytest.fixture(params=["sqlite", "postgresql"])
async def api_any(request, tmp_path):
    """The API on each storage backend."""
    if request.param == "sqlite":
        async with serve(tmp_path, tmp_path / "f.sqlite", 1 << 20) as pair:
            yield pair
        return
    async with pg_database() as url, serve(tmp_path, url, 1 << 20) as pair:
        yield pair


def auth(token):
    return {"Authorization": f"Bearer {token}"}
