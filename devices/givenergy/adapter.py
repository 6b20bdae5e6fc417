"""GivEnergy hybrid inverter over its local TCP port 8899.

The wire is GivEnergy's own framing (a "transparent" envelope with the data-adapter serial and
a CRC around Modbus-like PDUs), encoded and decoded by the ``givenergy-modbus`` library's PDU
classes and framer. flexd drives its own request/response loop on top instead of the library's
``Client``: the dongle answers one request at a time, and the library client's plant detection
and keep-last-good guards would hide exactly the changes flexd must see (a forced charge moving
the SoC). Registers are parsed and writes built in :mod:`devices.givenergy.registers`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, ClassVar

from givenergy_modbus.exceptions import ExceptionBase
from givenergy_modbus.framer import ClientFramer
from givenergy_modbus.pdu import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
    TransparentRequest,
)
from givenergy_modbus.pdu.read_registers import ReadRegistersResponse
from givenergy_modbus.pdu.write_registers import WriteHoldingRegisterResponse

from core.clock import Clock
from devices.base import (
    CommandResult,
    InverterCommand,
    InverterState,
    SetBatteryMode,
    SetReserve,
    SetSchedule,
)
from devices.errors import BadPayload, DeviceError, DeviceUnavailable, NotSupported
from devices.givenergy import registers as R
from devices.retry import with_timeout


@dataclass
class _Link:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    framer: ClientFramer


class GivEnergyAdapter:
    brand: ClassVar[str] = "givenergy"

    def __init__(
        self, host: str, port: int, clock: Clock, *, timeout_s: float = 5.0,
        device_address: int = R.INVERTER_ADDRESS, frame_gap_s: float = 0.25,
    ) -> None:  # fmt: skip
        self.host, self.port, self.clock = host, port, clock
        self.timeout_s = timeout_s
        self.device_address = device_address
        self._link: _Link | None = None
        self._lock = asyncio.Lock()  # the dongle serves one request at a time
        self._last: R.Registers | None = None
        # Real dongles drop frames sent back to back (the library's tx_message_wait is 0.25 s):
        # space them in wall time; simulators need no gap.
        self.frame_gap_s = frame_gap_s
        self._last_frame = 0.0

    # --- transport --------------------------------------------------------------------------

    async def _connect(self) -> _Link:
        if self._link is None:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                raise DeviceUnavailable(f"givenergy {self.host}:{self.port}: {exc}") from None
            self._link = _Link(reader, writer, ClientFramer())
        return self._link

    async def _drop(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.writer.close()
            with contextlib.suppress(Exception):
                await link.writer.wait_closed()

    async def _exchange(self, request: TransparentRequest) -> Any:
        link = await self._connect()
        if self.frame_gap_s:
            now = asyncio.get_running_loop().time()
            await asyncio.sleep(max(0.0, self._last_frame + self.frame_gap_s - now))
            self._last_frame = asyncio.get_running_loop().time()
        link.writer.write(request.encode())
        await link.writer.drain()
        expected = type(request.expected_response())
        while True:
            data = await link.reader.read(4096)
            if not data:
                raise DeviceUnavailable("givenergy closed the connection")
            async for pdu in link.framer.decode(data):
                if isinstance(pdu, ExceptionBase):
                    raise BadPayload(f"givenergy frame: {pdu}")
                if not isinstance(pdu, expected):
                    continue  # heartbeats and answers to other clients (the dongle fans out)
                if isinstance(pdu, ReadRegistersResponse):
                    if pdu.base_register != getattr(request, "base_register", None):
                        continue
                    if pdu.error:
                        raise BadPayload(f"givenergy refused the read at {pdu.base_register}")
                return pdu

    async def _call(self, request: TransparentRequest, what: str) -> Any:
        async with self._lock:
            try:
                return await with_timeout(self._exchange(request), self.timeout_s, what)
            except DeviceError:
                await self._drop()  # a half-read answer must not poison the next request
                raise
            except (OSError, asyncio.IncompleteReadError) as exc:
                await self._drop()
                raise DeviceUnavailable(f"{what}: {exc}") from None

    async def read_registers(self) -> R.Registers:
        banks: dict[str, dict[int, int]] = {"HR": {}, "IR": {}}
        for kind, base, count in R.READS:
            cls = ReadHoldingRegistersRequest if kind == "HR" else ReadInputRegistersRequest
            req = cls(base_register=base, register_count=count, device_address=self.device_address)
            resp = await self._call(req, f"givenergy read {kind}({base},{count})")
            values = list(resp.register_values)
            if len(values) != count:
                raise BadPayload(f"givenergy {kind}({base}) gave {len(values)} of {count} values")
            banks[kind].update({base + i: v for i, v in enumerate(values)})
        regs = R.parse(banks["HR"], banks["IR"])
        self._last = regs
        return regs

    # --- the adapter interface -----------------------------------------------------------------

    async def read_state(self) -> InverterState:
        r = await self.read_registers()
        now = self.clock.now()
        return InverterState(
            measured_at=now,
            battery_soc_pct=float(r.battery_soc_pct),
            battery_capacity_kwh=r.capacity_kwh,
            battery_w=float(r.p_battery_w),
            pv_w=float(r.p_pv_w),
            grid_w=float(-r.p_grid_out_w),  # GivEnergy: > 0 exporting; flexd: > 0 importing
            load_w=float(r.p_load_w),
            mode=r.mode_at(R.local_time(now)),
            reserve_pct=float(r.reserve_pct),
            raw={"registers": r},
            grid_import_kwh=r.e_grid_in_kwh,
            grid_export_kwh=r.e_grid_out_kwh,
        )

    async def apply(self, command: InverterCommand) -> CommandResult:
        if not isinstance(command, (SetBatteryMode, SetReserve, SetSchedule)):
            raise NotSupported(f"givenergy cannot apply {type(command).__name__}")
        capacity = (self._last or await self.read_registers()).capacity_kwh
        writes = R.writes_for(command, capacity)
        for w in writes:
            resp = await self._call(w, f"givenergy write HR({w.register})")
            if isinstance(resp, WriteHoldingRegisterResponse) and resp.error:
                return CommandResult(command, False, f"HR({w.register}) write refused")
        # Read back every register written: the inverter has the last word.
        after = await self._read_back({w.register: w.value for w in writes})
        if after:
            return CommandResult(command, False, "not honoured: " + ", ".join(after))
        regs = self._last
        if isinstance(command, SetBatteryMode) and command.power_w is not None \
                and regs is not None and not regs.info.rate_capped:
            return CommandResult(command, True, f"power not settable on {regs.info.name}: "
                                 "an AC-coupled unit runs at its own rate")  # fmt: skip
        return CommandResult(command, True)

    async def _read_back(self, wanted: dict[int, int]) -> list[str]:
        banks: dict[int, int] = {}
        for base in sorted({(r // 60) * 60 for r in wanted}):
            req = ReadHoldingRegistersRequest(
                base_register=base, register_count=60, device_address=self.device_address
            )
            resp = await self._call(req, f"givenergy read back HR({base})")
            banks.update({base + i: v for i, v in enumerate(resp.register_values)})
        return [f"HR({r}) is {banks.get(r)}, wrote {v}" for r, v in sorted(wanted.items())
                if banks.get(r) != v]  # fmt: skip

    async def close(self) -> None:
        await self._drop()
