"""solaredge_modbus, the community's SolarEdge SunSpec/StorEdge reader, reads flexd's SolarEdge
simulator as the inverter, its meter and its battery over Modbus TCP on loopback.

solaredge_modbus 0.8.0 (its newest release) needs pymodbus 3.5/3.6, which cannot live beside the
pymodbus 3.10+ flexd's adapter uses, so it is installed apart (``.ci/run``: ``pip install --target
.venv/legacy-solaredge solaredge_modbus==0.8.0 'pymodbus>=3.5,<3.7'``) and runs in a child
interpreter with that directory first on its path (tests/devices/solaredge_modbus_probe.py).
Without it the test skips, unless FLEXD_REQUIRE_SOLAREDGE_MODBUS=1 (as CI sets), when it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.clock import ManualClock
from simulator import solaredge as SE
from simulator.world import SiteWorld

REPO = Path(__file__).resolve().parents[2]
LEGACY = Path(os.environ.get("FLEXD_SOLAREDGE_MODBUS_PATH", REPO / ".venv" / "legacy-solaredge"))
PROBE = Path(__file__).with_name("solaredge_modbus_probe.py")
NOON = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def legacy_path() -> Path:
    if not (LEGACY / "solaredge_modbus").is_dir():
        why = f"solaredge_modbus is not installed in {LEGACY} (see .ci/run)"
        if os.environ.get("FLEXD_REQUIRE_SOLAREDGE_MODBUS") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return LEGACY


def _f32(value: float) -> float:
    """``value`` as the float32 a register pair carries."""
    out: float = struct.unpack(">f", struct.pack(">f", value))[0]
    return out


def _scaled(block: dict[str, Any], name: str) -> float:
    return float(block[name] * 10.0 ** block[f"{name}_scale"])


async def _probe(legacy: Path, port: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(legacy)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PROBE), "127.0.0.1", str(port), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode(errors="replace")
    doc: dict[str, Any] = json.loads(out)
    return doc


async def test_solaredge_modbus_reads_inverter_meter_and_battery(legacy_path: Path) -> None:
    clock = ManualClock(NOON)
    world = SiteWorld(clock)
    world.battery.capacity_kwh, world.battery.soc_kwh = 9.7, 6.2
    sim = SE.SolarEdgeSimulator(world)
    port = await sim.start()
    try:
        world.snapshot()
        clock.advance(1800)  # half an hour of midday: the counters move, the battery still charges
        snap = world.snapshot()
        doc = await _probe(legacy_path, port)
    finally:
        await sim.stop()

    inv = doc["inverter"]
    assert inv["c_id"] == "SunS" and inv["c_did"] == 1 and inv["c_length"] == 65
    assert (inv["c_manufacturer"], inv["c_model"]) == (SE.MANUFACTURER, SE.INVERTER_MODEL)
    assert (inv["c_serialnumber"], inv["c_version"]) == (SE.INVERTER_SERIAL, SE.INVERTER_VERSION)
    assert inv["c_sunspec_did"] == 103 and inv["c_deviceaddress"] == SE.UNIT
    ac_w = snap.pv_w + snap.battery_w
    assert _scaled(inv, "power_ac") == round(ac_w) and ac_w != 0
    assert _scaled(inv, "power_dc") == pytest.approx(ac_w, abs=5)  # carried in tens of watts
    assert inv["status"] == SE.INVERTER_MPPT

    assert list(doc["meters"]) == ["Meter1"]
    meter = doc["meters"]["Meter1"]
    assert (meter["c_model"], meter["c_serialnumber"]) == (SE.METER_MODEL, SE.METER_SERIAL)
    assert meter["c_sunspec_did"] == 201
    assert _scaled(meter, "power") == round(-snap.grid_w) != 0  # > 0 exporting, SunSpec's sign
    assert meter["export_energy_active"] == int(snap.export_kwh * 1000) > 0
    assert meter["import_energy_active"] == int(snap.import_kwh * 1000)
    assert meter["energy_active_scale"] == 0

    assert list(doc["batteries"]) == ["Battery1"]  # battery 2's address reads 255: absent
    bat = doc["batteries"]["Battery1"]
    assert (bat["c_model"], bat["c_serialnumber"]) == (SE.BATTERY_MODEL, SE.BATTERY_SERIAL)
    assert bat["rated_energy"] == _f32(world.battery.capacity_kwh * 1000)
    assert bat["maximum_energy"] == _f32(world.battery.capacity_kwh * 1000)
    assert bat["soe"] == _f32(snap.battery_soc_pct)
    assert bat["available_energy"] == pytest.approx(world.battery.soc_kwh * 1000, rel=1e-6)
    assert bat["instantaneous_power"] == _f32(-snap.battery_w)  # StorEdge: > 0 charging
    assert snap.battery_w < 0 and bat["status"] == SE.BATTERY_CHARGING
    assert bat["maximum_charge_continuous_power"] == _f32(world.battery.max_charge_w)
