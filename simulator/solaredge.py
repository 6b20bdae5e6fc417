"""A SolarEdge inverter + StorEdge battery on SunSpec Modbus TCP, backed by a SiteWorld.

Reads are computed from the world at the moment of the request (with SunSpec scale factors);
writes to the storage-control registers change the world. Faults per simulator.faults.

The register space is laid out as a SolarEdge unit presents it, so SunSpec clients accept it:
"SunS" at 40000, the inverter's common model (1) at 40002, model 103 at 40069, meter 1's common
model at 40121 and its model 201 at 40188, the end marker at 40295; the StorEdge battery's
identity block at 0xE100 and its state up to 0xE19F; battery 2's device address at 0xE240 reads
255, which solaredge_modbus takes as "no second battery".
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from core.clock import Clock, SystemClock
from devices.base import BatteryMode
from devices.solaredge import registers as R
from simulator import sunspec_blocks as S
from simulator.faults import Faults
from simulator.modbus_tcp import ModbusError, ModbusTcpServer
from simulator.serve import serve_until_interrupted
from simulator.world import SiteWorld

# Identity the simulated site reports (a single-phase StorEdge inverter, its export/import meter
# and one SolarEdge Home Battery).
MANUFACTURER = "SolarEdge"
INVERTER_MODEL, INVERTER_VERSION, INVERTER_SERIAL = "SE5000H-RWS", "0004.0020.0036", "7E1A2B3C"
METER_MODEL, METER_OPTION = "SE-MTR-1P-A", "Export+Import"
METER_VERSION, METER_SERIAL = "0001.0006", "606A0B1C"
BATTERY_MODEL, BATTERY_VERSION, BATTERY_SERIAL = "BAT-10K1P", "DCDC 1.1.12 BMS 1.1.40", "7F10ABCD"
UNIT = 1
METER_UNIT = 2
BATTERY_UNIT = 15  # the battery's own bus address as SolarEdge units report it at 0xE140

INVERTER_COMMON = 40002
INVERTER_MODEL_ID, INVERTER_MODEL_LEN = 103, 50  # three-phase 103 layout; 101 is the same length
METER_COMMON = 40121
METER_MODEL_AT, METER_MODEL_ID, METER_MODEL_LEN = 40188, 201, 105  # single-phase meter
END_AT = 40295
BATTERY_IDENTITY = 0xE100
BATTERY_LAST = 0xE19F
BATTERY2_DEVICE_ADDRESS = 0xE240

# Model 103 / 201 points the simulator fills beyond those flexd's adapter reads.
I_PHV_A, I_V_SF, I_HZ, I_HZ_SF, I_TMP_SNK, I_TMP_SF, I_ST = (
    40079, 40082, 40085, 40086, 40103, 40106, 40107)  # fmt: skip
M_A, M_A_SF, M_PHV, M_V_SF, M_HZ, M_W_A = 40190, 40194, 40195, 40203, 40204, 40207
B_MAX_CHARGE_W, B_MAX_DISCHARGE_W, B_PEAK_CHARGE_W, B_PEAK_DISCHARGE_W = (
    0xE144, 0xE146, 0xE148, 0xE14A)  # fmt: skip
B_AVG_TEMP, B_MAX_ENERGY, B_AVAILABLE_ENERGY, B_SOH, B_STATUS = (
    0xE16C, 0xE17E, 0xE180, 0xE182, 0xE186)  # fmt: skip
INVERTER_MPPT, INVERTER_SLEEPING = 4, 2  # SunSpec model 103 St
BATTERY_CHARGING, BATTERY_DISCHARGING, BATTERY_IDLE = 3, 4, 6  # SolarEdge battery status


def _lay(regs: dict[int, int], at: int, values: list[int]) -> None:
    regs.update(zip(range(at, at + len(values)), values, strict=True))


def identity_registers() -> dict[int, int]:
    """The static part of the register space: SunSpec chain and battery identity, zeros for
    every point the simulator does not compute."""
    regs: dict[int, int] = {}
    _lay(regs, R.SUNS, list(S.SUNS))
    _lay(regs, INVERTER_COMMON, S.common_model(
        MANUFACTURER, INVERTER_MODEL, INVERTER_VERSION, INVERTER_SERIAL, UNIT))
    _lay(regs, R.INVERTER, [INVERTER_MODEL_ID, INVERTER_MODEL_LEN] + [0] * INVERTER_MODEL_LEN)
    _lay(regs, METER_COMMON, S.common_model(
        MANUFACTURER, METER_MODEL, METER_VERSION, METER_SERIAL, METER_UNIT, METER_OPTION))
    _lay(regs, METER_MODEL_AT, [METER_MODEL_ID, METER_MODEL_LEN] + [0] * METER_MODEL_LEN)
    _lay(regs, END_AT, list(S.END_MARKER))
    head = S.storedge_battery_identity(
        MANUFACTURER, BATTERY_MODEL, BATTERY_VERSION, BATTERY_SERIAL, BATTERY_UNIT)
    _lay(regs, BATTERY_IDENTITY, head)
    after = BATTERY_IDENTITY + len(head)
    _lay(regs, after, [0] * (BATTERY_LAST + 1 - after))
    _lay(regs, BATTERY2_DEVICE_ADDRESS, [255])
    return regs


def _i16(v: float) -> int:
    x = round(v)
    x = max(-32767, min(32767, x))
    return x & 0xFFFF


class SolarEdgeSimulator:
    def __init__(self, world: SiteWorld, faults: Faults | None = None) -> None:
        self.world = world
        self.faults = faults or Faults()
        self.control: dict[int, int] = {a: 0 for a in range(0xE004, 0xE012)}
        self.control[R.STORAGE_CONTROL_MODE] = R.ControlMode.SELF_CONSUMPTION
        for a, v in zip(
            range(R.BACKUP_RESERVE, R.BACKUP_RESERVE + 2), R.f32(world.reserve_pct), strict=True
        ):
            self.control[a] = v
        self.identity = identity_registers()
        self.modbus = ModbusTcpServer(self._read, self._write, self.faults)
        self._revert_task: asyncio.Task[None] | None = None

    async def start(self, port: int = 0) -> int:
        return await self.modbus.start(port=port)

    async def stop(self) -> None:
        await self.modbus.stop()

    @property
    def port(self) -> int:
        return self.modbus.port

    def _registers(self) -> dict[int, int]:
        s = self.world.snapshot()
        regs = dict(self.identity)
        inv = [0] * R.INVERTER_BLOCK[1]
        inv[0], inv[1] = 103, 50
        dc = s.pv_w + s.battery_w
        ac = s.pv_w + s.battery_w
        # Scale factor 0: whole watts fit an int16 for a home inverter.
        inv[R.I_AC_POWER - R.INVERTER_BLOCK[0]] = _i16(ac)
        inv[R.I_AC_POWER_SF - R.INVERTER_BLOCK[0]] = 0
        inv[R.I_DC_POWER - R.INVERTER_BLOCK[0]] = _i16(dc / 10)
        inv[R.I_DC_POWER_SF - R.INVERTER_BLOCK[0]] = 1  # tens of watts: exercises the scale factor
        for i, v in enumerate(inv):
            regs[R.INVERTER_BLOCK[0] + i] = v
        meter = [_i16(-s.grid_w), 0, 0, 0, 0]  # positive = exporting
        meter[R.METER_AC_POWER_SF - R.METER_AC_POWER] = 0
        for i, v in enumerate(meter):
            regs[R.METER_AC_POWER + i] = v
        energy = [0] * R.METER_ENERGY_BLOCK[1]
        energy[0:2] = R.acc32(int(s.export_kwh * 1000) & 0xFFFFFFFF)
        off = R.METER_IMPORTED_WH - R.METER_EXPORTED_WH
        energy[off : off + 2] = R.acc32(int(s.import_kwh * 1000) & 0xFFFFFFFF)
        energy[R.METER_ENERGY_SF - R.METER_EXPORTED_WH] = 0
        for i, v in enumerate(energy):
            regs[R.METER_EXPORTED_WH + i] = v
        for i, v in enumerate(R.f32(self.world.battery.capacity_kwh * 1000)):
            regs[R.BATTERY_RATED_ENERGY + i] = v
        state = [0] * R.BATTERY_STATE_BLOCK[1]
        for i, v in enumerate(R.f32(-s.battery_w)):  # positive = charging
            state[i] = v
        off = R.BATTERY_SOE - R.BATTERY_POWER
        for i, v in enumerate(R.f32(s.battery_soc_pct)):
            state[off + i] = v
        for i, v in enumerate(state):
            regs[R.BATTERY_POWER + i] = v
        regs.update(self.control)
        self._lay_details(regs, s.pv_w + s.battery_w, -s.grid_w, s.battery_w)
        return regs

    def _lay_details(self, regs: dict[int, int], ac_w: float, meter_w: float, bat_w: float) -> None:
        """Points that SunSpec clients show and flexd does not read: grid voltage and frequency,
        per-phase power and current, inverter state, and the battery's limits and energies."""
        b = self.world.battery
        volts = 240.0
        _lay(regs, I_PHV_A, [round(volts * 10)])
        _lay(regs, I_V_SF, [_i16(-1)])
        _lay(regs, I_HZ, [5000])
        _lay(regs, I_HZ_SF, [_i16(-2)])
        _lay(regs, I_TMP_SNK, [3500])
        _lay(regs, I_TMP_SF, [_i16(-2)])
        _lay(regs, I_ST, [INVERTER_MPPT if round(ac_w) != 0 else INVERTER_SLEEPING])
        centiamps = _i16(abs(meter_w) / volts * 100)
        _lay(regs, M_A, [centiamps, centiamps])  # total and phase A
        _lay(regs, M_A_SF, [_i16(-2)])
        _lay(regs, M_PHV, [round(volts * 10), round(volts * 10)])  # average and phase A
        _lay(regs, M_V_SF, [_i16(-1)])
        _lay(regs, M_HZ, [5000, _i16(-2)])
        _lay(regs, M_W_A, [_i16(meter_w)])
        floats = {
            B_MAX_CHARGE_W: b.max_charge_w, B_MAX_DISCHARGE_W: b.max_discharge_w,
            B_PEAK_CHARGE_W: b.max_charge_w, B_PEAK_DISCHARGE_W: b.max_discharge_w,
            B_AVG_TEMP: 25.0, B_MAX_ENERGY: b.capacity_kwh * 1000,
            B_AVAILABLE_ENERGY: b.soc_kwh * 1000, B_SOH: 100.0,
        }  # fmt: skip
        for at, value in floats.items():
            _lay(regs, at, R.f32(value))
        status = BATTERY_IDLE if round(bat_w) == 0 else (
            BATTERY_DISCHARGING if bat_w > 0 else BATTERY_CHARGING)  # fmt: skip
        _lay(regs, B_STATUS, R.u32(status))

    def _read(self, address: int, count: int) -> list[int]:
        regs = self._registers()
        if any(a not in regs for a in range(address, address + count)):
            raise ModbusError(2)
        return [regs[a] for a in range(address, address + count)]

    def _write(self, address: int, values: list[int]) -> None:
        if any(a not in R.WRITABLE for a in range(address, address + len(values))):
            raise ModbusError(2)
        if self.faults.ignore_commands:
            return  # acknowledged, then ignored, as some firmware does
        before = dict(self.control)
        for i, v in enumerate(values):
            self.control[address + i] = v
        self._apply()
        if self.faults.revert_after_s is not None:
            self._schedule_revert(before)

    def _schedule_revert(self, before: dict[int, int]) -> None:
        delay = self.faults.revert_after_s or 0.0

        async def revert() -> None:
            await self.world.clock.sleep(delay)
            self.control = before
            self._apply()

        self._revert_task = asyncio.get_running_loop().create_task(revert())

    def _apply(self) -> None:
        c = self.control
        ctl = R.decode_control([c[a] for a in range(0xE004, 0xE012)])
        self.world.set_reserve(ctl["backup_reserve_pct"])
        cm, command = int(ctl["control_mode"]), int(ctl["command_mode"])
        if cm == R.ControlMode.TIME_OF_USE:
            self.world.set_mode(BatteryMode.ECO)
        elif cm != R.ControlMode.REMOTE:
            self.world.set_mode(BatteryMode.SELF_USE)
        elif command == R.CommandMode.CHARGE_PV_AND_AC:
            self.world.set_mode(BatteryMode.FORCE_CHARGE, max(1.0, ctl["charge_limit_w"]))
        elif command == R.CommandMode.MAXIMIZE_EXPORT:
            self.world.set_mode(BatteryMode.FORCE_DISCHARGE, max(1.0, ctl["discharge_limit_w"]))
        elif command == R.CommandMode.CHARGE_EXCESS_PV:
            self.world.set_mode(BatteryMode.HOLD)
        else:
            self.world.set_mode(BatteryMode.SELF_USE)


async def run_cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator solaredge")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    clock: Clock = SystemClock()
    sim = SolarEdgeSimulator(SiteWorld(clock))
    port = await sim.start(args.port)
    print(f"solaredge simulator (SunSpec Modbus TCP, unit 1) on 127.0.0.1:{port} at "
          f"{datetime.now(UTC).isoformat()}", flush=True)  # fmt: skip
    await serve_until_interrupted(sim.stop)
