"""givenergy-modbus's own Client reads flexd's GivEnergy simulator as an inverter.

The library's ``Client`` takes a host and port, so it talks to the simulator over a real
loopback socket in GivEnergy's framing: ``detect()`` reads HR(0)/HR(21) to resolve the model and
probes for meters and batteries (the simulator has none: it answers those addresses with error
frames), ``load_config()`` reads every holding bank, ``refresh()`` the input banks. Its Plant
throws away a holding bank with blank serial registers, so this also shows the identity
registers are where the library looks for them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from givenergy_modbus.client.client import Client
from givenergy_modbus.model.inverter import Model
from givenergy_modbus.model.plant import Plant

from core.clock import ManualClock
from devices.givenergy import registers as R
from simulator import givenergy as G
from simulator.world import SiteWorld

NOON = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
# The library's model per simulator model (its Model enum, via resolve_model on HR(0)/HR(21)).
LIBRARY_MODEL = {
    "hybrid": Model.HYBRID_GEN1, "ac": Model.AC, "aio": Model.ALL_IN_ONE, "ems": Model.EMS,
    "gateway": Model.GATEWAY, "three-phase": Model.HYBRID_3PH,
}  # fmt: skip


async def _client_on(sim: G.GivEnergySimulator) -> AsyncIterator[Client]:
    port = await sim.start()
    client = Client("127.0.0.1", port, tx_message_wait=0, tx_jitter=0)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()
        await sim.stop()


def _world(capacity_kwh: float = 9.5, soc_pct: float = 73.0) -> SiteWorld:
    world = SiteWorld(ManualClock(NOON))
    world.battery.capacity_kwh = capacity_kwh
    world.battery.soc_kwh = capacity_kwh * soc_pct / 100
    return world


async def _read(sim: G.GivEnergySimulator, *, full: bool) -> tuple[Any, Plant]:
    async for client in _client_on(sim):
        caps = await client.detect(timeout=2, retries=1, probe_timeout=0.5, probe_retries=0)
        if full:
            await client.load_config(timeout=2, retries=1)
            await client.refresh(timeout=2, retries=1)
        return caps, client.plant
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("model", "capacity_kwh"), [("hybrid", 9.5), ("ac", 8.2), ("aio", 13.5)])
async def test_client_reads_identity_and_the_world(model: str, capacity_kwh: float) -> None:
    world = _world(capacity_kwh)
    sim = G.GivEnergySimulator(world, model=model)
    caps, plant = await _read(sim, full=True)
    assert caps.device_type == LIBRARY_MODEL[model]
    inv = plant.inverter
    # Identity: model code, serial and firmware as the simulator is built.
    dtc, arm_fw = G.MODELS[model]
    assert inv.device_type_code == f"{dtc:04x}"
    assert inv.serial_number == sim.serial == G.SERIAL
    assert inv.arm_firmware_version == arm_fw
    assert inv.dsp_firmware_version == sim.hr[G.HR_DSP_FIRMWARE]
    # Capacity: the library's own Ah x model voltage (51.2 V, or 307 V for the All-in-One) is
    # the world's pack, to within the half-Ah rounding of HR(55).
    volts = R.identify(sim.hr).battery_v
    assert inv.battery_capacity_kwh == pytest.approx(capacity_kwh, abs=0.5 * volts / 1000)
    # State: SoC, battery and grid power in the library's signs (> 0 discharging, > 0 exporting).
    snap = world.snapshot()
    assert inv.battery_soc == round(snap.battery_soc_pct) == 73
    assert inv.p_battery == round(snap.battery_w) and snap.battery_w != 0
    assert inv.p_grid_out == round(-snap.grid_w) and snap.grid_w != 0
    assert inv.battery_soc_reserve == round(world.reserve_pct)
    if model == "ac":  # no PV string and no load clamp on an AC-coupled unit (issue 14, item 7)
        assert inv.p_pv1 == 0 and inv.p_load_demand == 0
    else:
        assert inv.p_pv1 == round(snap.pv_w) and snap.pv_w > 1000
        assert inv.p_load_demand == round(snap.load_w)


@pytest.mark.parametrize("model", ["ems", "gateway", "three-phase"])
async def test_client_identifies_the_models_flexd_refuses(model: str) -> None:
    sim = G.GivEnergySimulator(_world(), model=model)
    caps, plant = await _read(sim, full=False)
    assert caps.device_type == LIBRARY_MODEL[model]
    assert plant.inverter.serial_number == G.SERIAL
