"""The daemon with an OpenEVSE charger over a real broker: the car charges in SMART dispatches."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.clock import ScaledClock
from flexd.config import parse_config
from flexd.daemon import Daemon
from flexd.simulation import simulated_backends
from flexd.storage import Storage

START = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)


async def test_openevse_car_charges_overnight_in_smart_dispatches(tmp_path, mosquitto):
    doc = {
        "daemon": {"database": str(tmp_path / "flexd.sqlite"), "log_format": "json"},
        "api": {"enabled": False},
        "mqtt": {"enabled": False, "host": mosquitto.host, "port": mosquitto.port},
        "prices": {"source": "simulator"},
        "sites": [{"id": "home", "meter": "M1", "tariff": "io-go", "devices": [
            {"id": "evse", "brand": "openevse", "simulate": True, "poll_seconds": 30,
             "ev": {"capacity_kwh": 60, "max_charge_kw": 7.4, "initial_soc_pct": 30},
             "preferences": {"weekday_ready_by": "07:00", "target_soc_pct": 60}},
        ]}],
    }  # fmt: skip
    cfg = parse_config(doc, tmp_path, env={})
    clock = ScaledClock(START, 3000.0)
    storage = await Storage.open(cfg.database)
    daemon = Daemon(cfg, clock, storage, simulated_backends(cfg, clock),
                    until=START + timedelta(hours=9))  # fmt: skip
    await asyncio.wait_for(daemon.run(), timeout=120)
    ev = daemon.backends.hooks.sim_sites["home"].evs["evse"]
    smart = await storage.dispatches(device_id="evse", kind="smart")
    await storage.close()
    assert ev.soc_pct >= 59.0
    done = [d for d in smart if d.status == "completed"]
    assert done and sum(d.kwh for d in done) > Decimal(15)
