"""A SolarEdge inverter + StorEdge battery on SunSpec Modbus TCP, backed by a SiteWorld.

Reads are computed from the world at the moment of the request (with SunSpec scale factors);
writes to the storage-control registers change the world. Faults per simulator.faults.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from core.clock import Clock, SystemClock
from devices.base import BatteryMode
from devices.solaredge import registers as R
from simulator.faults import Faults
from simulator.modbus_tcp import ModbusError, ModbusTcpServer
from simulator.serve import serve_until_interrupted
from simulator.world import SiteWorld


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
        regs: dict[int, int] = {R.SUNS: 0x5375, R.SUNS + 1: 0x6E53}
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
        return regs

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
