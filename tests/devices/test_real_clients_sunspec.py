"""pysunspec2, the SunSpec Alliance's own client, scans flexd's SolarEdge simulator over Modbus
TCP on loopback: it finds "SunS", walks the model chain by each model's ID and length to the
end marker, and decodes every point with its scale factor by the SunSpec model definitions it
ships. So the chain must be well formed (a wrong length derails the walk) and the points must
sit where the models put them.

pysunspec2 is synchronous (its own socket client), so it runs in a worker thread while the
simulator serves on the test's event loop; the clock is manual, so nothing moves meanwhile.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import sunspec2.modbus.client as client

from core.clock import ManualClock
from simulator import solaredge as SE
from simulator.world import SiteWorld

NOON = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def _scan(port: int) -> dict[str, Any]:
    device = client.SunSpecModbusClientDeviceTCP(
        slave_id=SE.UNIT, ipaddr="127.0.0.1", ipport=port, timeout=5)
    try:
        device.scan()
        inverter_common, meter_common = device.models[1]
        inverter, meter = device.models[103][0], device.models[201][0]

        def ident(m: Any) -> dict[str, Any]:
            return {p: getattr(m, p).value for p in ("Mn", "Md", "Opt", "Vr", "SN", "DA")}

        return {
            "models": sorted((k, len(v)) for k, v in device.models.items() if isinstance(k, int)),
            "inverter_common": ident(inverter_common), "meter_common": ident(meter_common),
            "inverter": {p: getattr(inverter, p).cvalue for p in ("W", "DCW", "Hz", "PhVphA")}
            | {"St": inverter.St.value},
            "meter": {p: getattr(meter, p).cvalue for p in ("W", "WphA", "Hz", "PhVphA", "A")}
            | {"TotWhExp": meter.TotWhExp.cvalue, "TotWhImp": meter.TotWhImp.value},
        }  # fmt: skip
    finally:
        device.close()


async def test_pysunspec2_scans_the_chain_and_reads_the_world() -> None:
    clock = ManualClock(NOON)
    world = SiteWorld(clock)
    sim = SE.SolarEdgeSimulator(world)
    port = await sim.start()
    try:
        world.snapshot()
        clock.advance(1800)  # the export counter moves (SunSpec reads an acc32 of 0 as "unset")
        snap = world.snapshot()
        got = await asyncio.to_thread(_scan, port)
    finally:
        await sim.stop()

    # The whole chain, and nothing past the end marker: the inverter's and the meter's common
    # models, the inverter (103) and the single-phase meter (201).
    assert got["models"] == [(1, 2), (103, 1), (201, 1)]
    assert got["inverter_common"] == {
        "Mn": SE.MANUFACTURER, "Md": SE.INVERTER_MODEL, "Opt": None, "Vr": SE.INVERTER_VERSION,
        "SN": SE.INVERTER_SERIAL, "DA": SE.UNIT,
    }  # fmt: skip
    assert got["meter_common"] == {
        "Mn": SE.MANUFACTURER, "Md": SE.METER_MODEL, "Opt": SE.METER_OPTION,
        "Vr": SE.METER_VERSION, "SN": SE.METER_SERIAL, "DA": SE.METER_UNIT,
    }  # fmt: skip
    inv, meter = got["inverter"], got["meter"]
    ac_w = snap.pv_w + snap.battery_w
    assert inv["W"] == round(ac_w) and ac_w != 0
    assert inv["DCW"] == pytest.approx(ac_w, abs=5)  # scale factor 1: tens of watts
    assert inv["St"] == SE.INVERTER_MPPT
    assert inv["Hz"] == pytest.approx(50.0) and inv["PhVphA"] == pytest.approx(240.0)
    assert meter["W"] == meter["WphA"] == round(-snap.grid_w) != 0  # > 0 exporting
    assert meter["A"] == pytest.approx(abs(snap.grid_w) / 240, abs=0.01)
    assert meter["TotWhExp"] == int(snap.export_kwh * 1000) > 0
    assert (meter["TotWhImp"] or 0) == int(snap.import_kwh * 1000)
