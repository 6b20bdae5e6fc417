"""Text as 16-bit registers, the way both SunSpec and GivEnergy send identifiers and strings:
two ASCII bytes a register, the first in the high byte, NUL-padded to the field's width."""

from __future__ import annotations


def ascii_registers(text: str, count: int) -> list[int]:
    raw = text.encode("ascii")
    if len(raw) > 2 * count:
        raise ValueError(f"{text!r} does not fit {count} registers")
    raw = raw.ljust(2 * count, b"\x00")
    return [raw[2 * i] << 8 | raw[2 * i + 1] for i in range(count)]
