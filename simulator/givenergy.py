"""A GivEnergy hybrid inverter on its local TCP port, in GivEnergy's own framing, over a
SiteWorld.

Requests are decoded with the ``givenergy-modbus`` library's server framer and answered with its
response PDUs (correct envelope and CRC), so the adapter talks to this exactly as to a dongle.
Input registers are computed from the world at the moment of the request; holding registers are
the inverter's configuration, and writing them re-derives the world's battery mode (slots are
local Europe/London wall-clock times, so the mode is re-evaluated on every read).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import UTC, date, datetime, timedelta
from typing import cast

from givenergy_modbus.framer import ServerFramer
from givenergy_modbus.model import TimeSlot
from givenergy_modbus.pdu import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
    TransparentResponse,
    WriteHoldingRegisterRequest,
)
from givenergy_modbus.pdu.read_registers import ReadRegistersResponse

from core.clock import Clock, SystemClock
from devices.base import BatteryMode
from devices.givenergy import registers as R
from simulator.ascii_registers import ascii_registers
from simulator.faults import Faults
from simulator.serve import serve_until_interrupted
from simulator.world import ScheduledMode, SiteWorld

SERIAL = "SA2114G047"
ADAPTER_SERIAL = "WF2114G047"
BATTERY_SERIAL = "BG2114G047"
# Identity registers beside the model code, where givenergy-modbus's Inverter map reads them
# (model/inverter.py: first_battery_serial_number HR(8-12), serial_number HR(13-17), dsp firmware
# HR(19), modbus_version HR(34) in hundredths). Its Plant discards a holding bank whose serial
# registers are blank (Plant.update: "invalid serial"), as it would a stray dongle's frame.
HR_BATTERY_SERIAL = range(8, 13)
HR_SERIAL = range(13, 18)
HR_DSP_FIRMWARE = 19
HR_MODBUS_VERSION = 34
DSP_FIRMWARE = 449  # the hybrid gen 1 capture's DSP and ARM versions are the same build
MODBUS_VERSION_CENTI = 138
# Input registers a real inverter also answers (IR 120-179 config/meter block, IR 180-239
# energy/temperature block), read by givenergy-modbus's load_config and refresh; zeros here.
IR_EXTRA_BANKS = (range(120, 180), range(180, 240))
# Holding banks past the 0-179 configuration that newer units answer (HR 240-299 extended
# timeslots, HR 300-359 the AC/AIO's further settings), all read by load_config; zeros here.
HR_EXTRA_BANKS = (range(180, 240), range(240, 300), range(300, 360))
# HR(0) device type code and HR(21) ARM firmware of the models the simulator can be, as real
# units report them (the givenergy-modbus captures: hybrid gen 1 arm 449, AC arm 282, AIO arm
# 612, EMS arm 1036, Gateway 14, three-phase 0x4004).
MODELS: dict[str, tuple[int, int]] = {
    "hybrid": (0x2001, 449),
    "ac": (0x3001, 282),
    "aio": (0x8001, 612),
    "ems": (0x5001, 1036),
    "gateway": (0x7001, 14),
    "three-phase": (0x4004, 0),
}


def _windows(
    day: date, slot: TimeSlot, mode: BatteryMode, power_w: float | None
) -> list[ScheduledMode]:
    """A daily local slot on one day, as a UTC window (a slot over midnight ends the next day)."""
    start = datetime.combine(day, slot.start, tzinfo=R.LONDON)
    end_day = day if slot.end > slot.start else day + timedelta(days=1)
    end = datetime.combine(end_day, slot.end, tzinfo=R.LONDON)
    if end <= start:
        return []
    return [ScheduledMode(start.astimezone(UTC), end.astimezone(UTC), mode, power_w)]


def _u16(v: float) -> int:
    return max(-32768, min(32767, round(v))) & 0xFFFF


class GivEnergySimulator:
    def __init__(
        self, world: SiteWorld, faults: Faults | None = None, *, model: str = "hybrid"
    ) -> None:
        self.world = world
        self.faults = faults or Faults()
        self.model = model
        dtc, arm_fw = MODELS[model]
        self.hr: dict[int, int] = {a: 0 for a in range(0, 180)}
        for bank in HR_EXTRA_BANKS:
            self.hr.update(dict.fromkeys(bank, 0))
        self.hr.update({R.HR_DEVICE_TYPE_CODE: dtc, R.HR_ARM_FIRMWARE: arm_fw})
        self.serial = SERIAL
        self.hr.update(zip(HR_SERIAL, ascii_registers(SERIAL, len(HR_SERIAL)), strict=True))
        self.hr.update(zip(HR_BATTERY_SERIAL, ascii_registers(BATTERY_SERIAL, 5), strict=True))
        self.hr.update({HR_DSP_FIRMWARE: DSP_FIRMWARE if model == "hybrid" else arm_fw,
                        HR_MODBUS_VERSION: MODBUS_VERSION_CENTI})  # fmt: skip
        # An EMS, Gateway or three-phase plant serves its identity and zeros here, as the real
        # ones do in this bank (their data lives elsewhere); the adapter must refuse it.
        self.supported = model in ("hybrid", "ac", "aio")
        volts = R.identify(self.hr).battery_v if self.supported else R.NOMINAL_BATTERY_V
        capacity_ah = round(world.battery.capacity_kwh * 1000 / volts) if self.supported else 0
        self.hr.update({
            R.HR_BATTERY_CAPACITY_AH: capacity_ah,
            R.HR_BATTERY_POWER_MODE: 1,  # Eco
            R.HR_BATTERY_SOC_RESERVE: max(4, round(world.reserve_pct)),
            R.HR_BATTERY_CHARGE_LIMIT: R.MAX_C_RATE,
            R.HR_BATTERY_DISCHARGE_LIMIT: R.MAX_C_RATE,
            R.HR_CHARGE_TARGET_SOC: 100,
        })  # fmt: skip
        self.writes = 0
        self.arrivals: list[float] = []  # loop time of every request frame (pacing tests)
        self._laid_until = datetime.min.replace(tzinfo=UTC)
        # The pack's own limits; the C-rate registers cap power below them.
        self.pack_charge_w = world.battery.max_charge_w
        self.pack_discharge_w = world.battery.max_discharge_w
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._apply()

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        return self.port

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._conns):
                w.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    # --- the world behind the registers -----------------------------------------------------

    def _regs(self) -> R.Registers:
        # Config as a supported unit would hold it (an unsupported model's is never used).
        hr = self.hr if self.supported else self.hr | dict.fromkeys(
            (R.HR_DEVICE_TYPE_CODE, R.HR_ARM_FIRMWARE, R.HR_BATTERY_CAPACITY_AH), 0x2001)
        return R.parse(hr, {a: 0 for a in range(60)} | {R.IR_BATTERY_SOC: 50})

    def _apply(self) -> None:
        """Derive the world's mode from the configuration registers (call after any write)."""
        regs = self._regs()
        self.world.set_reserve(float(regs.reserve_pct))
        cap = self.world.battery.capacity_kwh * 1000.0
        self.world.battery.max_charge_w = min(
            self.pack_charge_w, regs.charge_limit_c100 / 100 * cap
        )
        self.world.battery.max_discharge_w = min(
            self.pack_discharge_w, regs.discharge_limit_c100 / 100 * cap
        )
        self._refresh_mode()

    def _refresh_mode(self) -> None:
        """Lay the daily slots out as the world's schedule (UTC windows) for a few days around
        now, so the world switches mode at the slot edges even between reads."""
        regs = self._regs()
        now = self.world.clock.now()
        self._laid_until = now + timedelta(days=1)
        base = BatteryMode.HOLD if regs.enable_discharge else BatteryMode.SELF_USE
        windows: list[ScheduledMode] = []
        today = now.astimezone(R.LONDON).date()
        for day in (today + timedelta(days=d) for d in range(-1, 3)):
            if regs.enable_charge and regs.charge_slot_1 is not None:
                windows += _windows(day, regs.charge_slot_1, BatteryMode.FORCE_CHARGE,
                                    self.world.battery.max_charge_w)  # fmt: skip
            if regs.enable_discharge and regs.discharge_slot_1 is not None:
                export = regs.battery_power_mode == 0
                mode = BatteryMode.FORCE_DISCHARGE if export else BatteryMode.SELF_USE
                power = self.world.battery.max_discharge_w if export else None
                windows += _windows(day, regs.discharge_slot_1, mode, power)
        self.world.set_mode(base)
        self.world.set_schedule(windows)

    def input_registers(self) -> dict[int, int]:
        if self.world.clock.now() >= self._laid_until:
            self._refresh_mode()
        s = self.world.snapshot()
        ir = {a: 0 for a in range(0, 60)}
        for bank in IR_EXTRA_BANKS:
            ir.update(dict.fromkeys(bank, 0))
        if not self.supported:
            return ir
        # An AC-coupled unit has no PV string and reads 0 W load (the AC captures); the AIO
        # reads the house load but its IR(18) is AC-side (a value flexd ignores).
        ir[R.IR_P_PV1] = _u16(s.pv_w) if self.model != "ac" else 0
        ir[R.IR_P_GRID_OUT] = _u16(-s.grid_w)
        ir[R.IR_P_LOAD_DEMAND] = _u16(s.load_w) if self.model != "ac" else 0
        ir[R.IR_P_BATTERY] = _u16(s.battery_w)
        ir[R.IR_BATTERY_SOC] = round(s.battery_soc_pct)
        for (hi, lo), kwh in ((R.IR_E_GRID_IN_TOTAL, s.import_kwh),
                              (R.IR_E_GRID_OUT_TOTAL, s.export_kwh)):  # fmt: skip
            deci = int(kwh * 10)
            ir[hi], ir[lo] = deci >> 16, deci & 0xFFFF
        return ir

    # --- the wire -----------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.faults.refuse_connections or (self.faults.single_client and self._conns):
            writer.close()
            return
        self._conns.add(writer)
        framer = ServerFramer()
        try:
            while data := await reader.read(4096):
                if self.faults.refuse_connections:
                    break  # the dongle dropped off the network: existing links die too
                async for pdu in framer.decode(data):
                    self.arrivals.append(asyncio.get_running_loop().time())
                    if self.faults.hang:
                        continue
                    reply = self._respond(pdu)
                    if reply is not None:
                        writer.write(reply)
                        await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()

    def _respond(self, pdu: object) -> bytes | None:
        reply = self._answer(pdu)
        if reply is not None and self.faults.malformed:
            # The right envelope around a garbled body: what a flaky dongle sends.
            return reply[:30] + b"\xff" * (len(reply) - 32) + reply[-2:]
        return reply

    def _answer(self, pdu: object) -> bytes | None:
        if isinstance(pdu, WriteHoldingRegisterRequest):
            if not self.faults.ignore_commands:
                self.hr[pdu.register] = pdu.value
                self._apply()
            self.writes += 1
            resp = cast(TransparentResponse, pdu.expected_response())
            return self._stamp(resp)
        if isinstance(pdu, (ReadHoldingRegistersRequest, ReadInputRegistersRequest)):
            holding = isinstance(pdu, ReadHoldingRegistersRequest)
            bank = self.hr if holding else self.input_registers()
            rr = cast(ReadRegistersResponse, pdu.expected_response())
            base, count = pdu.base_register, pdu.register_count
            if any(base + i not in bank for i in range(count)):
                rr.error, rr.padding, rr.register_values = True, 0x12, []
                rr.inverter_serial_number, rr.data_adapter_serial_number = SERIAL, ADAPTER_SERIAL
                return bytes(rr.encode())
            rr.register_values = [bank[base + i] for i in range(count)]
            return self._stamp(rr)
        return None  # heartbeat answers and anything else need no reply

    def _stamp(self, resp: TransparentResponse) -> bytes:
        resp.inverter_serial_number = SERIAL
        resp.data_adapter_serial_number = ADAPTER_SERIAL
        resp.padding = 0x8A
        return bytes(resp.encode())


async def run_cli(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulator givenergy")
    ap.add_argument("--port", type=int, default=8899)
    ap.add_argument("--model", choices=sorted(MODELS), default="hybrid")
    args = ap.parse_args(argv)
    clock: Clock = SystemClock()
    sim = GivEnergySimulator(SiteWorld(clock), model=args.model)
    port = await sim.start(args.port)
    print(f"givenergy simulator on 127.0.0.1:{port} (started {datetime.now(UTC):%H:%M:%S}Z)")
    await serve_until_interrupted(sim.stop)

