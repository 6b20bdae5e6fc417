"""A bus for two sites in a process of its own, so a test can kill it without a clean
disconnect: ``python -m tests.mqtt.bus_process HOST PORT DBFILE``."""

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from core.clock import ManualClock
from flexd.config import MqttConfig, parse_config
from flexd.control.runtime import build_sites
from flexd.mqtt.bus import MqttBus
from flexd.service import Service
from flexd.storage import Storage


def site(sid: str) -> dict:
    return {"id": sid, "meter": f"M-{sid}", "tariff": "io-go", "account": "A1",
            "devices": [{"id": f"charger-{sid}", "brand": "ocpp", "charge_point_id": sid,
                         "ev": {"capacity_kwh": 60, "max_charge_kw": 7.4}}]}  # fmt: skip


async def main(host: str, port: int, db: Path) -> None:
    doc = {"daemon": {"database": str(db)}, "sites": [site("north"), site("south")]}
    cfg = parse_config(doc, db.parent, env={})
    storage = await Storage.open(cfg.database)
    clock = ManualClock(datetime(2026, 3, 2, 19, 0, tzinfo=UTC))
    service = Service(cfg, storage, clock, build_sites(cfg.sites))
    bus = MqttBus(service, MqttConfig(enabled=True, host=host, port=port, ha_discovery=False))
    task = asyncio.create_task(bus.run())
    await bus.connected.wait()
    print("connected", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])))
