"""A small Modbus TCP server (MBAP framing; functions 3, 6 and 16) for device simulators.

A simulator supplies ``read(address, count) -> list[int]`` and ``write(address, values)``;
either may raise :class:`ModbusError` with an exception code (2: illegal address). Fault
switches: refuse connections, hang, malformed answers, one client at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable

from simulator.faults import Faults


class ModbusError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"modbus exception {code}")
        self.code = code


Reader = Callable[[int, int], list[int]]
Writer = Callable[[int, list[int]], None]


class ModbusTcpServer:
    def __init__(self, read: Reader, write: Writer, faults: Faults, unit: int = 1) -> None:
        self.read, self.write, self.faults, self.unit = read, write, faults, unit
        self.server: asyncio.Server | None = None
        self.clients = 0
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, host, port)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        f = self.faults
        if f.refuse_connections or (f.single_client and self.clients >= 1):
            writer.close()
            return
        self.clients += 1
        try:
            while True:
                header = await reader.readexactly(7)
                tid, proto, length, unit = struct.unpack(">HHHB", header)
                body = await reader.readexactly(length - 1)
                if f.refuse_connections:
                    return
                if f.hang:
                    await asyncio.sleep(3600)
                reply = self._handle(body)
                if f.malformed and reply[0] == 3:
                    reply = bytes([3, 2]) + b"\xff\xff"  # well framed, too few registers
                writer.write(struct.pack(">HHHB", tid, proto, len(reply) + 1, unit) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.clients -= 1
            writer.close()

    def _handle(self, pdu: bytes) -> bytes:
        fc = pdu[0]
        try:
            if fc == 3:
                addr, count = struct.unpack(">HH", pdu[1:5])
                regs = self.read(addr, count)
                return bytes([3, 2 * count]) + struct.pack(f">{count}H", *regs)
            if fc == 6:
                addr, value = struct.unpack(">HH", pdu[1:5])
                self.write(addr, [value])
                return pdu[:5]
            if fc == 16:
                addr, count, nbytes = struct.unpack(">HHB", pdu[1:6])
                values = list(struct.unpack(f">{count}H", pdu[6 : 6 + nbytes]))
                self.write(addr, values)
                return pdu[:5]
            raise ModbusError(1)
        except ModbusError as exc:
            return bytes([fc | 0x80, exc.code])
