"""SolarEdge inverter with a StorEdge battery over SunSpec Modbus TCP (pymodbus client).

Production port 1502, unit 1, one client at a time. Battery control goes through the StorEdge
remote-control registers; some firmware acknowledges a write and then ignores it, so every
command is read back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import ClassVar

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from core.clock import Clock
from devices.base import (
    BatteryMode,
    CommandResult,
    InverterCommand,
    InverterState,
    SetReserve,
    SetSchedule,
)
from devices.errors import BadPayload, DeviceUnavailable, NotSupported
from devices.retry import with_timeout
from devices.solaredge import registers as R

REMOTE_TIMEOUT_S = 3600  # a remote command lapses to the default mode unless re-sent


def writes_for(command: InverterCommand, timeout_s: int = REMOTE_TIMEOUT_S) -> list[R.Write]:
    """The register writes for one command (pure; checked against the writable set)."""
    W = R.Write
    if isinstance(command, SetReserve):
        return R.checked([W(R.BACKUP_RESERVE, tuple(R.f32(command.reserve_pct)))])
    if isinstance(command, SetSchedule):
        raise NotSupported("SolarEdge time-of-use profiles are not writable over Modbus")
    mode = command.mode
    if mode == BatteryMode.SELF_USE:
        return R.checked([W(R.STORAGE_CONTROL_MODE, (R.ControlMode.SELF_CONSUMPTION,))])
    if mode == BatteryMode.ECO:
        return R.checked([W(R.STORAGE_CONTROL_MODE, (R.ControlMode.TIME_OF_USE,))])
    remote = [
        W(R.STORAGE_CONTROL_MODE, (R.ControlMode.REMOTE,)),
        W(R.AC_CHARGE_POLICY, (1,)),
        W(R.DEFAULT_MODE, (R.CommandMode.MAXIMIZE_SELF_CONSUMPTION,)),
        W(R.COMMAND_TIMEOUT, tuple(R.u32(timeout_s))),
    ]
    if mode == BatteryMode.HOLD:
        remote.append(W(R.COMMAND_MODE, (R.CommandMode.CHARGE_EXCESS_PV,)))
    elif mode == BatteryMode.FORCE_CHARGE:
        remote.append(W(R.COMMAND_MODE, (R.CommandMode.CHARGE_PV_AND_AC,)))
        remote.append(W(R.CHARGE_LIMIT, tuple(R.f32(float(command.power_w or 0)))))
    elif mode == BatteryMode.FORCE_DISCHARGE:
        remote.append(W(R.COMMAND_MODE, (R.CommandMode.MAXIMIZE_EXPORT,)))
        remote.append(W(R.DISCHARGE_LIMIT, tuple(R.f32(float(command.power_w or 0)))))
    return R.checked(remote)


def mode_of(control: dict[str, float]) -> BatteryMode:
    cm = int(control["control_mode"])
    if cm == R.ControlMode.TIME_OF_USE:
        return BatteryMode.ECO
    if cm != R.ControlMode.REMOTE:
        return BatteryMode.SELF_USE
    by_command = {
        int(R.CommandMode.CHARGE_EXCESS_PV): BatteryMode.HOLD,
        int(R.CommandMode.CHARGE_PV_AND_AC): BatteryMode.FORCE_CHARGE,
        int(R.CommandMode.MAXIMIZE_EXPORT): BatteryMode.FORCE_DISCHARGE,
    }
    return by_command.get(int(control["command_mode"]), BatteryMode.SELF_USE)


def parse_state(
    inverter: Sequence[int], meter: Sequence[int], rated: Sequence[int],
    battery: Sequence[int], control: Sequence[int], measured_at: object,
    energy: Sequence[int] | None = None,
) -> InverterState:  # fmt: skip
    """Registers to a state, with scale factors and signs turned into ours."""
    if len(inverter) < 42 or len(meter) < 5 or len(battery) < 18 or len(control) < 14:
        raise BadPayload("short register block")
    if inverter[0] not in (101, 102, 103):
        raise BadPayload(f"unexpected SunSpec inverter model {inverter[0]}")
    i = lambda addr: inverter[addr - R.INVERTER_BLOCK[0]]  # noqa: E731
    dc_w = R.scaled(i(R.I_DC_POWER), i(R.I_DC_POWER_SF))
    meter_w = R.scaled(meter[0], meter[R.METER_AC_POWER_SF - R.METER_AC_POWER])
    rated_wh = R.read_f32(rated, 0)
    se_battery_w = R.read_f32(battery, 0)  # SolarEdge: positive = charging
    soe = R.read_f32(battery, R.BATTERY_SOE - R.BATTERY_POWER)
    if not (0 <= soe <= 100.5) or rated_wh <= 0 or rated_wh != rated_wh:
        raise BadPayload(f"implausible battery values (SoE {soe}, rated {rated_wh} Wh)")
    ctl = dict(R.decode_control(control))
    battery_w = -se_battery_w
    pv_w = max(0.0, dc_w - battery_w)
    grid_w = -meter_w
    imported = exported = None
    if energy is not None and len(energy) >= R.METER_ENERGY_BLOCK[1]:
        sf = 10.0 ** R.read_i16(energy[R.METER_ENERGY_SF - R.METER_ENERGY_BLOCK[0]])
        exported = R.read_acc32(energy, 0) * sf / 1000.0
        imported = R.read_acc32(energy, R.METER_IMPORTED_WH - R.METER_EXPORTED_WH) * sf / 1000.0
    return InverterState(
        grid_import_kwh=imported,
        grid_export_kwh=exported,
        measured_at=measured_at,  # type: ignore[arg-type]
        battery_soc_pct=min(100.0, soe),
        battery_capacity_kwh=rated_wh / 1000.0,
        battery_w=battery_w,
        pv_w=pv_w,
        grid_w=grid_w,
        load_w=max(0.0, pv_w + grid_w + battery_w),
        mode=mode_of(ctl),
        reserve_pct=ctl["backup_reserve_pct"],
        raw={"dc_w": dc_w, "meter_w": meter_w, **ctl},
    )


class SolarEdgeAdapter:
    brand: ClassVar[str] = "solaredge"

    def __init__(
        self, host: str, port: int, clock: Clock, *, unit: int = 1, timeout_s: float = 5.0
    ) -> None:
        self.host, self.port, self.unit = host, port, unit
        self.clock = clock
        self.timeout_s = timeout_s
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()  # SolarEdge serves one request at a time

    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        await self._drop()
        client = AsyncModbusTcpClient(
            self.host, port=self.port, timeout=self.timeout_s, retries=0, reconnect_delay=0
        )
        try:
            ok = await with_timeout(client.connect(), self.timeout_s, "solaredge connect")
        except DeviceUnavailable:
            client.close()
            raise
        if not ok:
            client.close()
            raise DeviceUnavailable(f"solaredge {self.host}:{self.port}: connection refused")
        self._client = client
        return client

    async def _drop(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    async def _read(self, address: int, count: int) -> list[int]:
        client = await self._connected()
        try:
            rr = await with_timeout(
                client.read_holding_registers(address, count=count, device_id=self.unit),
                self.timeout_s,
                f"solaredge read 0x{address:04X}",
            )
        except DeviceUnavailable:
            await self._drop()
            raise
        except ModbusException as exc:
            await self._drop()
            if "decode" in str(exc).lower() or "frame" in str(exc).lower():
                raise BadPayload(f"solaredge: {exc}") from exc
            raise DeviceUnavailable(f"solaredge: {exc}") from exc
        if rr.isError():
            raise BadPayload(f"solaredge read 0x{address:04X}: exception {rr}")
        regs = list(rr.registers)
        if len(regs) != count:
            await self._drop()
            raise BadPayload(f"solaredge read 0x{address:04X}: {len(regs)} of {count} registers")
        return regs

    async def read_state(self) -> InverterState:
        async with self._lock:
            inverter = await self._read(*R.INVERTER_BLOCK)
            meter = await self._read(*R.METER_BLOCK)
            rated = await self._read(*R.BATTERY_BLOCK)
            battery = await self._read(*R.BATTERY_STATE_BLOCK)
            control = await self._read(*R.CONTROL_BLOCK)
            energy = await self._read(*R.METER_ENERGY_BLOCK)
        return parse_state(inverter, meter, rated, battery, control, self.clock.now(), energy)

    async def apply(self, command: InverterCommand) -> CommandResult:
        writes = writes_for(command)
        async with self._lock:
            client = await self._connected()
            for w in writes:
                try:
                    wr = await with_timeout(
                        client.write_registers(w.address, list(w.values), device_id=self.unit),
                        self.timeout_s,
                        f"solaredge write 0x{w.address:04X}",
                    )
                except (DeviceUnavailable, ModbusException) as exc:
                    await self._drop()
                    raise DeviceUnavailable(f"solaredge write: {exc}") from exc
                if wr.isError():
                    raise BadPayload(f"solaredge write 0x{w.address:04X} refused: {wr}")
            control = await self._read(*R.CONTROL_BLOCK)
        return verify(command, writes, control)

    async def close(self) -> None:
        await self._drop()


def verify(command: object, writes: Sequence[R.Write], control: Sequence[int]) -> CommandResult:
    """Compare the control block read back with what was written."""
    base = R.CONTROL_BLOCK[0]
    for w in writes:
        got = tuple(control[w.address - base : w.address - base + len(w.values)])
        if got != tuple(w.values):
            return CommandResult(
                command, False, f"register 0x{w.address:04X} reads {got}, wrote {w.values}"
            )
    return CommandResult(command, True)
