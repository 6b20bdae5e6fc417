"""GivEnergy models, read from real captures (givenergy-modbus's test fixtures): the pack size
follows the model (the AIO's ~307 V pack read 6x too small at 51.2 V), AC-coupled units' house
balance comes from grid + battery, and EMS, Gateway and three-phase plants are refused by name."""

import contextlib
from datetime import UTC, datetime

import pytest

from core.clock import ManualClock
from devices.errors import NotSupported
from devices.givenergy import registers as R
from devices.givenergy.adapter import GivEnergyAdapter
from tests.devices.givenergy_captures import Replay, decode


def banks(extval, name):
    return decode(extval / "givenergy" / name)


@pytest.mark.parametrize(("capture", "kwh"), [
    ("aio_arm612_5min.log", 52 * 307 / 1000),  # HR(55) 52 Ah: the AIO's 15.96 kWh pack
    ("aio_arm620_redetect_7min.log", 52 * 307 / 1000),
    ("hybrid_gen1_arm449_givbat82_givbat95gen3_60min.log", 346 * 51.2 / 1000),  # 8.2 + 9.5 kWh
    ("hybrid_gen2_arm920_60s.log", 186 * 51.2 / 1000),  # a 9.5 kWh GivBat
    ("ac_arm282_2x_givbat52_30min.log", 204 * 51.2 / 1000),  # 2 x 5.2 kWh
    ("ac_arm282_1x_givbat512gen3_30min.log", 106 * 51.2 / 1000),  # 5.12 kWh
])
def test_capacity_follows_the_model(extval, capture, kwh):
    b = banks(extval, capture)
    regs = R.parse(b.hr, b.ir)
    assert regs.capacity_kwh == pytest.approx(kwh)


def test_the_all_in_one_is_not_a_sixth_of_its_pack(extval):
    regs = R.parse(*vars(banks(extval, "aio_arm612_5min.log")).values())
    assert regs.info.model.name == "ALL_IN_ONE"
    assert regs.capacity_kwh > 15.9  # was 2.66 kWh at 51.2 V


def test_ac_coupled_house_comes_from_grid_and_battery(extval):
    """The AC unit reads PV 0 W and load 0 W while the grid exports 530 W: the export is
    generation the unit does not meter (a PV inverter beside it), and pv + import + battery
    = load holds."""
    b = banks(extval, "ac_arm282_2x_givbat52_30min.log")
    assert b.ir[R.IR_P_LOAD_DEMAND] == 0 and b.ir[R.IR_P_PV1] == 0  # what the unit says
    regs = R.parse(b.hr, b.ir)
    grid_import = -regs.p_grid_out_w
    assert grid_import < 0  # exporting
    assert regs.p_pv_w + grid_import + regs.p_battery_w == regs.p_load_w
    assert regs.p_pv_w > 0


def test_all_in_one_balance_infers_pv_from_the_load(extval):
    b = banks(extval, "aio_arm612_5min.log")
    regs = R.parse(b.hr, b.ir)
    assert regs.p_load_w == b.ir[R.IR_P_LOAD_DEMAND]
    assert regs.p_pv_w + (-regs.p_grid_out_w) + regs.p_battery_w == regs.p_load_w


@pytest.mark.parametrize(("capture", "words"), [
    ("ems_arm1036_30min.log", "EMS"),
    ("ems_arm1036_60s.log", "EMS"),
    ("gateway_gaaa0014_10min_daylight.log", "GATEWAY"),
    ("giv3hy11_da011_detect_10min.log", "three-phase"),
])
def test_plants_flexd_does_not_drive_are_refused_by_name(extval, capture, words):
    b = banks(extval, capture)
    with pytest.raises(NotSupported) as err:
        R.parse(b.hr, b.ir)
    assert words in str(err.value) and "is not supported" in str(err.value)
    assert "0 Ah" not in str(err.value)


@contextlib.asynccontextmanager
async def replayed(extval, capture):
    """The real adapter reading a capture's banks over a loopback socket."""
    clock = ManualClock(datetime(2026, 5, 29, 7, 55, tzinfo=UTC))
    sim = Replay(banks(extval, capture), clock)
    port = await sim.start()
    adapter = GivEnergyAdapter("127.0.0.1", port, clock, timeout_s=2, frame_gap_s=0)
    try:
        yield sim, adapter
    finally:
        await adapter.close()
        await sim.stop()


async def test_the_adapter_reads_the_aio_capture_over_the_wire(extval):
    async with replayed(extval, "aio_arm612_5min.log") as (sim, adapter):
        state = await adapter.read_state()
        assert state.battery_capacity_kwh == pytest.approx(15.964)
        assert state.battery_soc_pct == sim.input_registers()[R.IR_BATTERY_SOC]


async def test_the_adapter_refuses_an_ems_over_the_wire(extval):
    async with replayed(extval, "ems_arm1036_60s.log") as (_sim, adapter):
        with pytest.raises(NotSupported, match="EMS"):
            await adapter.read_state()
