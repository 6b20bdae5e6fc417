"""GivEnergy single-phase hybrid inverter: the registers flexd reads and writes, parsed and built
by pure functions (no socket here).

Register numbers and sign conventions follow the maintained ``givenergy-modbus`` library's model
(``model/inverter.py``); the wire writes themselves are built with that library's command
functions (``client/commands.py``) and checked against its per-model allowlist of writable
registers, so flexd never writes a register the library does not consider safe.

GivEnergy's own sign conventions differ from flexd's and are flipped once, here:
``p_grid_out`` IR(30) > 0 is *exporting* (flexd: grid_w > 0 importing) and ``p_battery`` IR(52)
> 0 is discharging (flexd agrees).

How flexd's closed set of battery modes maps onto the inverter's timed modes:
- SELF_USE / ECO: "Eco" — battery_power_mode 1 (match demand), timed discharge off, AC charge off.
- HOLD: "Timed demand" with no discharge slot — the battery covers nothing outside its (empty)
  discharge slot, so it holds its charge; surplus PV still charges it.
- FORCE_CHARGE at P: AC charge on, charge slot 1 over the whole day, target SoC 100 %, and the
  charge-rate cap HR(111) set to P as C/100 of the pack (GivEnergy has no watt setpoint).
- FORCE_DISCHARGE at P: "Timed export" — battery_power_mode 0 (max power), timed discharge on,
  discharge slot 1 over the whole day, discharge-rate cap HR(112) set to P as C/100.
A whole-day slot is 00:00-23:59 local: the one minute before midnight is not covered, and the
dispatcher re-sends its command every half-hour anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from givenergy_modbus.client import commands
from givenergy_modbus.model import TimeSlot
from givenergy_modbus.model.inverter import Model, resolve_model
from givenergy_modbus.model.manifest import write_safe_registers
from givenergy_modbus.pdu.write_registers import WriteHoldingRegisterRequest

from core.timegrid import LONDON
from devices.base import BatteryMode, ModeWindow, SetBatteryMode, SetReserve, SetSchedule
from devices.errors import BadPayload, NotSupported

INVERTER_ADDRESS = 0x11
NOMINAL_BATTERY_V = 51.2  # LV packs: capacity_ah * 51.2 V is the pack's energy

# Holding registers (configuration)
HR_DEVICE_TYPE_CODE = 0  # e.g. 0x2001 hybrid, 0x3001 AC, 0x8001 All-in-One
HR_ARM_FIRMWARE = 21
HR_ENABLE_CHARGE_TARGET = 20
HR_BATTERY_POWER_MODE = 27  # 0 export at max power, 1 match demand ("eco")
HR_BATTERY_CAPACITY_AH = 55
HR_DISCHARGE_SLOT_1 = (56, 57)
HR_ENABLE_DISCHARGE = 59
HR_DISCHARGE_SLOT_2 = (44, 45)
HR_CHARGE_SLOT_1 = (94, 95)
HR_ENABLE_CHARGE = 96
HR_CHARGE_SLOT_2 = (31, 32)
HR_BATTERY_SOC_RESERVE = 110
HR_BATTERY_CHARGE_LIMIT = 111  # C/100 of the pack
HR_BATTERY_DISCHARGE_LIMIT = 112
HR_CHARGE_TARGET_SOC = 116
# Input registers (measurements)
IR_P_PV1, IR_P_PV2 = 18, 20
IR_E_GRID_OUT_TOTAL = (21, 22)  # 0.1 kWh, high word first
IR_P_GRID_OUT = 30  # int16, > 0 exporting
IR_E_GRID_IN_TOTAL = (32, 33)
IR_P_LOAD_DEMAND = 42
IR_P_BATTERY = 52  # int16, > 0 discharging
IR_BATTERY_SOC = 59

# The banks the adapter reads each poll (a GivEnergy read is at most 60 registers).
READS: tuple[tuple[str, int, int], ...] = (("HR", 0, 60), ("HR", 60, 60), ("IR", 0, 60))
WHOLE_DAY = TimeSlot(time(0, 0), time(23, 59))
MAX_C_RATE = 50  # 0.5C: the pack's own limit, restored when no power is commanded
WRITABLE = write_safe_registers(None)  # the library's conservative single-phase allowlist


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What flexd does differently per GivEnergy model, from HR(0) and HR(21).

    Evidence, from givenergy-modbus 2.13 (``model/inverter.py``, ``model/manifest.py``) and
    real captures of its test suite:
    - the All-in-One's pack is ~307 V, not 51.2 V (``Model.system_battery_voltage``): two AIO
      captures (DTC 0x8001) hold HR(55) = 52 Ah, which is the 15.96 kWh pack only at 307 V;
    - AC-coupled units (DTC 0x3xxx) have no PV string, and IR(42) load reads 0 (both AC
      captures: load 0 W while the grid exports), so the house is inferred from grid + battery;
    - on the AIO, IR(18)/IR(20) are derived from the AC side, not PV strings
      (manifest ``pv_string_vi_ac_derived``), while IR(42) is the house load;
    - EMS, Gateway and three-phase plants keep their power and battery data in other register
      banks (HR/IR 1000+, 1600+, 2040+) that flexd does not drive.
    """

    model: Model
    name: str
    battery_v: float
    pv_measured: bool  # IR(18)+IR(20) are PV strings
    load_measured: bool  # IR(42) is the house load
    # HR(111)/HR(112) cap the battery's rate on DC-coupled units; on AC-coupled ones the live
    # control is HR(313)/HR(314) (givenergy-modbus manifest, is_ac_coupled; its issue #302),
    # which flexd does not write: a power there is not applied.
    rate_capped: bool = True


# Refused families, with the reason a user sees (the poller reports it as the device's error).
UNSUPPORTED: dict[Model, str] = {
    Model.EMS: "an EMS is a plant controller with no battery registers of its own; "
    "add each inverter it manages instead",
    Model.EMS_COMMERCIAL: "a commercial EMS is a plant controller; add each inverter instead",
    Model.GATEWAY: "the Gateway keeps the plant's data in IR(1600+), which flexd does not read; "
    "add the All-in-One behind it instead",
    Model.HYBRID_3PH: "three-phase inverters use the HR/IR(1000+) map, which flexd does not drive",
    Model.AC_3PH: "three-phase inverters use the HR/IR(1000+) map, which flexd does not drive",
    Model.AIO_COMMERCIAL: "three-phase inverters use the HR/IR(1000+) map, "
    "which flexd does not drive",
    Model.ALL_IN_ONE_HYBRID: "the All-in-One Hybrid is decoded as three-phase "
    "(HR/IR(1000+)), which flexd does not drive",
    Model.HYBRID_HV_GEN3: "its HV pack voltage is not known from the registers flexd reads, "
    "so its capacity would be wrong",
    Model.HYBRID_GEN4: "no capture of it confirms the register map or pack voltage",
}


def identify(hr: Mapping[int, int]) -> ModelInfo:
    """The model behind the registers, or NotSupported naming it and why."""
    try:
        dtc, arm_fw = hr[HR_DEVICE_TYPE_CODE], hr[HR_ARM_FIRMWARE]
    except KeyError as exc:
        raise BadPayload(f"register {exc.args[0]} missing from the answer") from None
    try:
        model = resolve_model(dtc, arm_fw)
    except ValueError:
        raise NotSupported(
            f"givenergy device type code 0x{dtc:04x} (HR(0)) is not a known model"
        ) from None
    family = Model(f"{dtc:04x}")  # the coarse family, from the first digit
    name = f"{model.name} (HR(0)=0x{dtc:04x}, firmware {arm_fw})"
    if model in UNSUPPORTED or family in UNSUPPORTED:
        reason = UNSUPPORTED.get(model) or UNSUPPORTED[family]
        raise NotSupported(f"givenergy model {name} is not supported: {reason}")
    if family == Model.AC:
        return ModelInfo(model, name, NOMINAL_BATTERY_V, pv_measured=False, load_measured=False,
                         rate_capped=False)  # fmt: skip
    if family == Model.ALL_IN_ONE:
        return ModelInfo(model, name, Model.ALL_IN_ONE.system_battery_voltage,
                         pv_measured=False, load_measured=True)  # fmt: skip
    if family == Model.HYBRID:
        return ModelInfo(model, name, NOMINAL_BATTERY_V, pv_measured=True, load_measured=True)
    raise NotSupported(f"givenergy model {name} is not supported: flexd knows no map for it")


def _s16(v: int) -> int:
    return v - 0x10000 if v >= 0x8000 else v


def _u32(hi: int, lo: int) -> int:
    return (hi << 16) | lo


def decode_slot(start: int, end: int) -> TimeSlot | None:
    """GivEnergy slots are two registers of local HHMM (e.g. 2330); 0-0 means unset."""
    if start == end == 0:
        return None
    try:
        return TimeSlot(time(start // 100, start % 100), time(end // 100, end % 100))
    except ValueError as exc:
        raise BadPayload(f"time slot {start}-{end}: {exc}") from None


def encode_slot(slot: TimeSlot | None) -> tuple[int, int]:
    if slot is None:
        return 0, 0
    return slot.start.hour * 100 + slot.start.minute, slot.end.hour * 100 + slot.end.minute


def in_slot(slot: TimeSlot | None, t: time) -> bool:
    if slot is None:
        return False
    if slot.start <= slot.end:
        return slot.start <= t < slot.end
    return t >= slot.start or t < slot.end  # across midnight


@dataclass(frozen=True, slots=True)
class Registers:
    """What the adapter needs from one poll, in GivEnergy's own terms (except p_pv_w and
    p_load_w, which are flexd's house balance on models that do not measure them)."""

    info: ModelInfo
    battery_soc_pct: int
    battery_capacity_ah: int
    p_pv_w: int
    p_grid_out_w: int
    p_load_w: int
    p_battery_w: int
    e_grid_in_kwh: float
    e_grid_out_kwh: float
    battery_power_mode: int
    enable_charge: bool
    enable_discharge: bool
    charge_slot_1: TimeSlot | None
    discharge_slot_1: TimeSlot | None
    charge_target_soc: int
    reserve_pct: int
    charge_limit_c100: int
    discharge_limit_c100: int

    @property
    def capacity_kwh(self) -> float:
        return self.battery_capacity_ah * self.info.battery_v / 1000.0

    def mode_at(self, local: time) -> BatteryMode:
        charging = self.enable_charge and in_slot(self.charge_slot_1, local)
        if charging and self.battery_soc_pct < self.charge_target_soc:
            return BatteryMode.FORCE_CHARGE
        if self.enable_discharge:
            if in_slot(self.discharge_slot_1, local):
                if self.battery_power_mode == 0:
                    return BatteryMode.FORCE_DISCHARGE
                return BatteryMode.SELF_USE
            return BatteryMode.HOLD
        return BatteryMode.SELF_USE


def parse(hr: Mapping[int, int], ir: Mapping[int, int]) -> Registers:
    """Registers from the raw banks; a missing register or an impossible value is BadPayload,
    and a model flexd does not drive is NotSupported (before its zeros could read as a pack)."""
    info = identify(hr)
    try:
        soc = ir[IR_BATTERY_SOC]
        pv, load = _house(info, ir)
        regs = Registers(
            info=info,
            battery_soc_pct=soc,
            battery_capacity_ah=hr[HR_BATTERY_CAPACITY_AH],
            p_pv_w=pv,
            p_grid_out_w=_s16(ir[IR_P_GRID_OUT]),
            p_load_w=load,
            p_battery_w=_s16(ir[IR_P_BATTERY]),
            e_grid_in_kwh=_u32(*(ir[a] for a in IR_E_GRID_IN_TOTAL)) / 10.0,
            e_grid_out_kwh=_u32(*(ir[a] for a in IR_E_GRID_OUT_TOTAL)) / 10.0,
            battery_power_mode=hr[HR_BATTERY_POWER_MODE],
            enable_charge=bool(hr[HR_ENABLE_CHARGE]),
            enable_discharge=bool(hr[HR_ENABLE_DISCHARGE]),
            charge_slot_1=decode_slot(*(hr[a] for a in HR_CHARGE_SLOT_1)),
            discharge_slot_1=decode_slot(*(hr[a] for a in HR_DISCHARGE_SLOT_1)),
            charge_target_soc=hr[HR_CHARGE_TARGET_SOC] if hr[HR_ENABLE_CHARGE_TARGET] else 100,
            reserve_pct=hr[HR_BATTERY_SOC_RESERVE],
            charge_limit_c100=hr[HR_BATTERY_CHARGE_LIMIT],
            discharge_limit_c100=hr[HR_BATTERY_DISCHARGE_LIMIT],
        )
    except KeyError as exc:
        raise BadPayload(f"register {exc.args[0]} missing from the answer") from None
    if not 0 <= soc <= 100:
        raise BadPayload(f"IR({IR_BATTERY_SOC}) battery SoC {soc} is outside 0..100")
    if regs.battery_capacity_ah <= 0:
        raise BadPayload(f"HR({HR_BATTERY_CAPACITY_AH}) battery capacity is 0 Ah")
    if regs.battery_power_mode not in (0, 1):
        mode = regs.battery_power_mode
        raise BadPayload(f"HR({HR_BATTERY_POWER_MODE}) battery power mode {mode} is not 0 or 1")
    return regs


def _house(info: ModelInfo, ir: Mapping[int, int]) -> tuple[int, int]:
    """PV and house load in W. Where a model does not measure one, it is the rest of the
    balance pv + grid import + battery discharge = load, so the three always add up. With
    neither measured (AC-coupled), the net of grid and battery is load when positive and
    unmetered generation (a PV inverter beside it) when negative: both are lower bounds."""
    net = _s16(ir[IR_P_BATTERY]) - _s16(ir[IR_P_GRID_OUT])  # battery out + grid import
    pv = ir[IR_P_PV1] + ir[IR_P_PV2] if info.pv_measured else None
    load = ir[IR_P_LOAD_DEMAND] if info.load_measured else None
    if pv is not None and load is not None:
        return pv, load
    if load is not None:
        return max(0, load - net), load
    if pv is not None:
        return pv, max(0, pv + net)
    return max(0, -net), max(0, net)


def c_rate(power_w: float, capacity_kwh: float) -> int:
    """A power as the C/100 rate cap GivEnergy takes (0.5C at most)."""
    return max(1, min(MAX_C_RATE, round(100 * power_w / (capacity_kwh * 1000.0))))


Write = WriteHoldingRegisterRequest


def writes_for(
    command: SetBatteryMode | SetReserve | SetSchedule, capacity_kwh: float
) -> list[Any]:
    """The register writes for one command, built by the library and checked against its
    allowlist (a write outside it is NotSupported, never sent)."""
    out: list[Any]
    if isinstance(command, SetReserve):
        # The inverter takes 4..100 %; below 4 the battery keeps 4 % anyway.
        out = list(commands.set_battery_soc_reserve(max(4, round(command.reserve_pct))))
    elif isinstance(command, SetBatteryMode):
        out = _mode_writes(command.mode, command.power_w, capacity_kwh)
    elif isinstance(command, SetSchedule):
        out = _schedule_writes(command.windows, capacity_kwh)
    else:
        raise NotSupported(f"givenergy cannot apply {type(command).__name__}")
    return check_allowed(out)


def check_allowed(writes: list[Any]) -> list[Any]:
    """Only holding-register writes the library allows on this model; anything else is
    NotSupported and nothing is sent."""
    checked: list[Any] = []
    for w in writes:
        if not isinstance(w, Write) or w.register not in WRITABLE:
            raise NotSupported(f"HR({getattr(w, 'register', '?')}) is not writable on this model")
        w.device_address = INVERTER_ADDRESS
        checked.append(w)
    return checked


def _mode_writes(mode: BatteryMode, power_w: float | None, capacity_kwh: float) -> list[Any]:
    w: list[Any] = []
    if mode == BatteryMode.FORCE_CHARGE:
        assert power_w is not None
        w += commands.set_discharge_mode_to_match_demand()
        w += commands.set_enable_discharge(False)
        w += commands.set_charge_slot(1, WHOLE_DAY, commands.SINGLE_PHASE_SLOTS)
        w += commands.set_charge_target_enabled(100)
        w += commands.set_battery_charge_limit(c_rate(power_w, capacity_kwh))
    elif mode == BatteryMode.FORCE_DISCHARGE:
        assert power_w is not None
        w += commands.set_enable_charge(False)
        w += commands.set_discharge_slot(1, WHOLE_DAY, commands.SINGLE_PHASE_SLOTS)
        w += commands.set_discharge_mode_max_power()
        w += commands.set_battery_discharge_limit(c_rate(power_w, capacity_kwh))
        w += commands.set_enable_discharge(True)
    elif mode == BatteryMode.HOLD:
        w += commands.set_enable_charge(False)
        w += commands.reset_discharge_slot(1, commands.SINGLE_PHASE_SLOTS)
        w += commands.set_discharge_mode_to_match_demand()
        w += commands.set_enable_discharge(True)
    else:  # SELF_USE, ECO: the inverter's Eco mode
        w += commands.set_enable_charge(False)
        w += commands.set_enable_discharge(False)
        w += commands.set_discharge_mode_to_match_demand()
    if mode != BatteryMode.FORCE_CHARGE:
        w += commands.set_battery_charge_limit(MAX_C_RATE)
    if mode != BatteryMode.FORCE_DISCHARGE:
        w += commands.set_battery_discharge_limit(MAX_C_RATE)
    return w


def _local_slot(win: ModeWindow) -> TimeSlot:
    start, end = win.start.astimezone(LONDON), win.end.astimezone(LONDON)
    if (win.end - win.start).total_seconds() >= 24 * 3600:
        raise NotSupported("givenergy slots repeat daily: a window must be under 24 h")
    return TimeSlot(time(start.hour, start.minute), time(end.hour, end.minute))


def _schedule_writes(windows: tuple[ModeWindow, ...], capacity_kwh: float) -> list[Any]:
    """Up to two charge windows and two discharge (export) windows, as the inverter's slots."""
    charge = [w for w in windows if w.mode == BatteryMode.FORCE_CHARGE]
    export = [w for w in windows if w.mode == BatteryMode.FORCE_DISCHARGE]
    other = [w for w in windows if w.mode not in (BatteryMode.FORCE_CHARGE,
                                                   BatteryMode.FORCE_DISCHARGE)]  # fmt: skip
    if other or len(charge) > 2 or len(export) > 2:
        raise NotSupported("givenergy schedules take up to 2 force-charge and 2 export windows")
    slots = commands.SINGLE_PHASE_SLOTS
    out: list[Any] = []
    for i in (1, 2):
        out += (commands.set_charge_slot(i, _local_slot(charge[i - 1]), slots)
                if i <= len(charge) else commands.reset_charge_slot(i, slots))  # fmt: skip
        out += (commands.set_discharge_slot(i, _local_slot(export[i - 1]), slots)
                if i <= len(export) else commands.reset_discharge_slot(i, slots))  # fmt: skip
    out += commands.set_enable_charge(bool(charge))
    if charge:
        out += commands.set_charge_target_enabled(100)
        out += commands.set_battery_charge_limit(
            c_rate(max(w.power_w or 0.0 for w in charge) or 1e9, capacity_kwh))  # fmt: skip
    if export:
        out += commands.set_discharge_mode_max_power()
        out += commands.set_battery_discharge_limit(
            c_rate(max(w.power_w or 0.0 for w in export) or 1e9, capacity_kwh))  # fmt: skip
    out += commands.set_enable_discharge(bool(export))
    return out


def local_time(at: datetime) -> time:
    t = at.astimezone(LONDON)
    return time(t.hour, t.minute)
