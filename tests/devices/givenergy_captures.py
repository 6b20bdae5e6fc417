"""Real GivEnergy wire captures (givenergy-modbus's test suite, in ../shared/extval-fixtures),
decoded with the library's own framer into the register banks the inverter served, and replayed
over a loopback socket so the real adapter reads them exactly as it would read the dongle."""

from __future__ import annotations

import asyncio
import binascii
import logging
from dataclasses import dataclass
from pathlib import Path

from givenergy_modbus.framer import ClientFramer
from givenergy_modbus.pdu.read_registers import (
    ReadHoldingRegistersResponse,
    ReadRegistersResponse,
)

from core.clock import ManualClock
from devices.givenergy import registers as R
from simulator.givenergy import GivEnergySimulator
from simulator.world import SiteWorld


@dataclass
class Banks:
    hr: dict[int, int]
    ir: dict[int, int]


def decode(path: Path) -> Banks:
    """The inverter's holding and input registers, the last value of each seen in the capture.
    Address 0x11 wins; 0x31 fills the gaps (the library's ``inverter_address_for``: on AC and
    gen-1 hybrids 0x31 is a facade over the same register file). Frames that fail the
    library's CRC check are skipped, as the library does."""
    logging.getLogger("givenergy_modbus").setLevel(logging.ERROR)

    async def run() -> Banks:
        framer = ClientFramer()
        by_addr: dict[int, Banks] = {a: Banks({}, {}) for a in (R.INVERTER_ADDRESS, 0x31)}
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[1] != "rx":
                continue
            async for pdu in framer.decode(binascii.unhexlify(parts[2])):
                if not isinstance(pdu, ReadRegistersResponse) or pdu.error:
                    continue
                if pdu.device_address not in by_addr:
                    continue  # batteries (0x32+) and meters have their own maps
                banks = by_addr[pdu.device_address]
                bank = banks.hr if isinstance(pdu, ReadHoldingRegistersResponse) else banks.ir
                bank.update({pdu.base_register + i: v for i, v in
                             enumerate(pdu.register_values)})  # fmt: skip
        main, facade = by_addr[R.INVERTER_ADDRESS], by_addr[0x31]
        return Banks(facade.hr | main.hr, facade.ir | main.ir)

    return asyncio.run(run()) if not _loop_running() else _sync_in_thread(run)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _sync_in_thread(run):  # type: ignore[no-untyped-def]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, run()).result()


class Replay(GivEnergySimulator):
    """The simulator's wire (the library's server framer) serving a capture's banks verbatim."""

    def __init__(self, banks: Banks, clock: ManualClock) -> None:
        super().__init__(SiteWorld(clock))
        self.hr = {a: 0 for a in range(180)} | banks.hr
        self._ir = {a: 0 for a in range(60)} | banks.ir

    def input_registers(self) -> dict[int, int]:
        return self._ir
