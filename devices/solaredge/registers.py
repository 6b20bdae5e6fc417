"""SolarEdge SunSpec and StorEdge register map, and pure encode/decode functions.

Addresses are 0-based Modbus holding-register addresses (SolarEdge's documents number them
from 40001; the SunSpec base "SunS" is at 40000). 32-bit values are sent low word first, as
SolarEdge's storage registers require. Sources: SolarEdge "SunSpec Implementation Technical
Note" and "StorEdge Charge/Discharge Profile Programming" application note.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from devices.errors import BadPayload

SUNS = 40000  # "SunS" marker, 2 registers
INVERTER = 40069  # model 101/102/103 header (ID, length)
I_AC_POWER = 40083  # int16, W, scaled by I_AC_POWER_SF
I_AC_POWER_SF = 40084  # int16 scale factor
I_DC_POWER = 40100  # int16, W
I_DC_POWER_SF = 40101
METER_AC_POWER = 40206  # meter 1 total real power, int16, positive = exporting to the grid
METER_AC_POWER_SF = 40210
METER_EXPORTED_WH = 40226  # acc32 total real energy exported, Wh (high word first, SunSpec)
METER_IMPORTED_WH = 40234  # acc32 total real energy imported
METER_ENERGY_SF = 40242  # int16 scale factor for both
METER_ENERGY_BLOCK = (40226, 40243 - 40226)
INVERTER_BLOCK = (40069, 40 + 2)  # start, count covering 40069..40110
METER_BLOCK = (40206, 5)

STORAGE_CONTROL_MODE = 0xE004  # uint16: 1 self-consumption, 2 time of use, 3 backup, 4 remote
AC_CHARGE_POLICY = 0xE005  # uint16: 0 disabled, 1 always allowed
AC_CHARGE_LIMIT = 0xE006  # float32
BACKUP_RESERVE = 0xE008  # float32, %
DEFAULT_MODE = 0xE00A  # uint16 charge/discharge default mode (after a remote command times out)
COMMAND_TIMEOUT = 0xE00B  # uint32, s
COMMAND_MODE = 0xE00D  # uint16 remote control command mode
CHARGE_LIMIT = 0xE00E  # float32, W
DISCHARGE_LIMIT = 0xE010  # float32, W
CONTROL_BLOCK = (0xE004, 0xE012 - 0xE004)

BATTERY_RATED_ENERGY = 0xE142  # float32, Wh
BATTERY_POWER = 0xE174  # float32, W, positive = charging
BATTERY_SOE = 0xE184  # float32, %
BATTERY_BLOCK = (0xE142, 2)
BATTERY_STATE_BLOCK = (0xE174, 0xE186 - 0xE174)

# Only these may ever be written: the storage-control block.
WRITABLE = frozenset(range(0xE004, 0xE012))


class ControlMode(IntEnum):
    DISABLED = 0
    SELF_CONSUMPTION = 1
    TIME_OF_USE = 2
    BACKUP_ONLY = 3
    REMOTE = 4


class CommandMode(IntEnum):
    OFF = 0
    CHARGE_EXCESS_PV = 1  # PV surplus only
    CHARGE_PV_FIRST = 2  # PV first, then grid
    CHARGE_PV_AND_AC = 3  # from PV and the grid
    MAXIMIZE_EXPORT = 4  # discharge to the grid
    DISCHARGE_TO_LOAD = 5  # cover the load only
    MAXIMIZE_SELF_CONSUMPTION = 7


def f32(value: float) -> list[int]:
    """A float32 as two registers, low word first."""
    raw = struct.unpack(">HH", struct.pack(">f", value))
    return [raw[1], raw[0]]


def u32(value: int) -> list[int]:
    return [value & 0xFFFF, (value >> 16) & 0xFFFF]


def read_f32(regs: Sequence[int], offset: int) -> float:
    lo, hi = regs[offset], regs[offset + 1]
    value: float = struct.unpack(">f", struct.pack(">HH", hi, lo))[0]
    return value


def read_acc32(regs: Sequence[int], offset: int) -> int:
    """A SunSpec acc32 counter (high word first, unlike the StorEdge floats)."""
    return (regs[offset] << 16) | regs[offset + 1]


def acc32(value: int) -> list[int]:
    return [(value >> 16) & 0xFFFF, value & 0xFFFF]


def read_i16(value: int) -> int:
    return value - 0x10000 if value >= 0x8000 else value


def scaled(value: int, sf: int) -> float:
    """A SunSpec value with its int16 scale factor (10**sf); 0x8000 marks 'not implemented'."""
    if value == 0x8000 or sf == 0x8000:
        raise BadPayload("SunSpec value not implemented (0x8000)")
    return read_i16(value) * 10.0 ** read_i16(sf)


@dataclass(frozen=True, slots=True)
class Write:
    address: int
    values: tuple[int, ...]


def checked(writes: Sequence[Write]) -> list[Write]:
    """Refuse any write outside the storage-control registers."""
    for w in writes:
        for a in range(w.address, w.address + len(w.values)):
            if a not in WRITABLE:
                raise ValueError(f"register 0x{a:04X} is not writable on SolarEdge")
    return list(writes)


def decode_control(regs: Sequence[int]) -> Mapping[str, float]:
    """The storage-control block starting at 0xE004."""
    base = 0xE004
    return {
        "control_mode": regs[STORAGE_CONTROL_MODE - base],
        "ac_charge_policy": regs[AC_CHARGE_POLICY - base],
        "backup_reserve_pct": read_f32(regs, BACKUP_RESERVE - base),
        "command_mode": regs[COMMAND_MODE - base],
        "charge_limit_w": read_f32(regs, CHARGE_LIMIT - base),
        "discharge_limit_w": read_f32(regs, DISCHARGE_LIMIT - base),
        "command_timeout_s": regs[COMMAND_TIMEOUT - base]
        | (regs[COMMAND_TIMEOUT - base + 1] << 16),
    }
