"""SunSpec identity blocks as register lists, for a simulator that must pass as the device to
SunSpec clients that walk the model chain (pysunspec2) or read fixed addresses
(solaredge_modbus).

The chain a SolarEdge inverter with one meter presents (SolarEdge "SunSpec Implementation
Technical Note": the inverter's common model at 40002, model 101/102/103 at 40069, meter 1's
common model at 40121 and its 201-204 model at 40188, then the end marker), and the StorEdge
battery's proprietary identity block at 0xE100 (same note; its strings are 16 registers each).
"""

from __future__ import annotations

from simulator.ascii_registers import ascii_registers as string_registers

SUNS = (0x5375, 0x6E53)  # "SunS"
COMMON_MODEL_ID, COMMON_MODEL_LEN = 1, 65
END_MARKER = (0xFFFF, 0x0000)  # model ID 0xFFFF with length 0 closes the chain
NOT_IMPLEMENTED_I16 = 0x8000


def common_model(
    manufacturer: str, model: str, version: str, serial: str, device_address: int,
    options: str = "",
) -> list[int]:  # fmt: skip
    """SunSpec model 1 with its ID and length: Mn(16) Md(16) Opt(8) Vr(8) SN(16) DA(1)."""
    body = (string_registers(manufacturer, 16) + string_registers(model, 16)
            + string_registers(options, 8) + string_registers(version, 8)
            + string_registers(serial, 16) + [device_address])  # fmt: skip
    assert len(body) == COMMON_MODEL_LEN
    return [COMMON_MODEL_ID, COMMON_MODEL_LEN, *body]


def storedge_battery_identity(
    manufacturer: str, model: str, version: str, serial: str, device_address: int,
    sunspec_did: int = 803,
) -> list[int]:  # fmt: skip
    """SolarEdge's battery block head at 0xE100: four 16-register strings (0xE100 manufacturer,
    0xE110 model, 0xE120 firmware, 0xE130 serial), 0xE140 device address, 0xE141 SunSpec DID
    (803, lithium-ion battery bank)."""
    return (string_registers(manufacturer, 16) + string_registers(model, 16)
            + string_registers(version, 16) + string_registers(serial, 16)
            + [device_address, sunspec_did])  # fmt: skip
