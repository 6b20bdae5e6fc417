"""A charger behind flexd's OCPP central system, as a :class:`devices.base.ChargerAdapter`.

Commands become charging profiles: a plan's periods a timed Absolute profile, charge-now a
full-power profile (with a remote start when no transaction runs), stop a 0 limit (a pause:
the session stays open). After each profile the adapter asks for the composite schedule and
reports a profile the charger refused or does not apply.
"""

from __future__ import annotations

from typing import ClassVar

from core.clock import Clock
from devices.base import (
    ChargeNow,
    ChargerCommand,
    ChargerState,
    ChargerStatus,
    CommandResult,
    SocSource,
    StopCharging,
)
from devices.errors import DeviceError, DeviceUnavailable, NotSupported
from devices.ocpp import profiles as P
from devices.ocpp.csms import CentralSystem
from devices.retry import with_timeout

PLUGGED = {"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"}


class OcppChargerAdapter:
    brand: ClassVar[str] = "ocpp"

    def __init__(
        self, csms: CentralSystem, charge_point_id: str, clock: Clock, *,
        max_power_w: float = 7400.0, unit: str = "W", phases: int = 1,
        voltage: float = P.NOMINAL_V, timeout_s: float = 10.0, silent_after_s: float = 900.0,
    ) -> None:  # fmt: skip
        self.csms = csms
        # A charge point sends a heartbeat every few minutes (300 s by default) and meter values
        # while charging: this long with neither, the link is dead even if the socket is not.
        self.silent_after_s = silent_after_s
        self.cp_id = charge_point_id
        self.clock = clock
        self.max_power_w = max_power_w
        self.unit, self.phases, self.voltage = unit, phases, voltage
        self.timeout_s = timeout_s

    async def read_state(self) -> ChargerState:
        rec = self.csms.records.get(self.cp_id)
        if rec is None or not rec.connected:
            raise DeviceUnavailable(f"charger {self.cp_id} is not connected")
        if rec.meter_at is None:
            raise DeviceUnavailable(f"charger {self.cp_id} has not sent meter values yet")
        silent = (self.clock.now() - (rec.last_seen or rec.meter_at)).total_seconds()
        if silent > self.silent_after_s:
            raise DeviceUnavailable(
                f"charger {self.cp_id} silent for {silent:.0f} s: missed heartbeats"
            )
        try:
            status = ChargerStatus(rec.status)
        except ValueError:
            status = ChargerStatus.UNAVAILABLE
        soc_ok = rec.soc_pct is not None
        return ChargerState(
            measured_at=rec.meter_at or rec.last_seen or self.clock.now(),
            plugged_in=rec.status in PLUGGED,
            charging_w=rec.power_w if rec.status == "Charging" else 0.0,
            session_kwh=max(0.0, rec.register_wh - rec.session_start_wh) / 1000
            if rec.transaction_id is not None else 0.0,
            energy_register_kwh=rec.register_wh / 1000,
            status=status,
            soc_pct=rec.soc_pct,
            soc_source=SocSource.CHARGER if soc_ok else SocSource.UNKNOWN,
            soc_measured_at=rec.soc_at,
            raw={"transaction_id": rec.transaction_id, "reconnects": rec.reconnects},
            session_id=None if rec.transaction_id is None else str(rec.transaction_id),
        )  # fmt: skip

    async def apply(self, command: ChargerCommand) -> CommandResult:
        rec = self.csms.record(self.cp_id)
        now = self.clock.now()
        pid = next(self.csms.profile_ids)
        if isinstance(command, ChargeNow):
            if rec.transaction_id is None:
                await with_timeout(
                    self.csms.remote_start(self.cp_id), self.timeout_s, "remote start"
                )
            power = min(command.power_w or self.max_power_w, self.max_power_w)
            profile = self._constant(power, pid, rec.transaction_id)
            expected = P.limit_for(power, self.unit, self.phases, self.voltage)
        elif isinstance(command, StopCharging):
            profile = self._constant(0.0, pid, rec.transaction_id)
            expected = 0.0
        else:
            periods = tuple(p for p in command.periods if p.end > now)
            profile = P.charging_profile(
                periods, now, profile_id=pid, transaction_id=rec.transaction_id,
                unit=self.unit, phases=self.phases, voltage=self.voltage,
            )  # fmt: skip
            lim = P.limit_at(profile, now)
            expected = 0.0 if lim is None else lim
        accepted, how = await self._set(profile)
        if not accepted:
            return CommandResult(command, False, how)
        try:
            got = await with_timeout(
                self.csms.composite_limit(self.cp_id, self.unit), self.timeout_s,
                "composite schedule",
            )  # fmt: skip
        except NotSupported:
            # OCPP 1.6 makes GetCompositeSchedule optional (Smart Charging profile), and a
            # charger may reject it: without a read-back, the accepted profile is all there is.
            detail = "accepted; no read-back (GetCompositeSchedule not supported or rejected)"
            return CommandResult(command, True, f"{how}; {detail}" if how else detail)
        if got is None or abs(got - expected) > 0.5:
            return CommandResult(
                command, False, f"charger applies limit {got}, expected {expected}"
            )
        return CommandResult(command, True, how)

    async def _set(self, profile: dict[str, object]) -> tuple[bool, str]:
        """Send a profile, falling back where a charger refuses TxDefaultProfile (some accept
        TxProfile only, so before a transaction nothing would stop a full-power start): the
        same schedule as a ChargePointMaxProfile on connector 0, remembered so the refused
        purpose is not tried every cycle, and cleared once a transaction's profile lands."""
        rec = self.csms.record(self.cp_id)
        purpose = profile["charging_profile_purpose"]
        if purpose == "TxDefaultProfile" and rec.tx_default_refused:
            return await self._as_max_profile(profile)
        if not await self._send(profile):
            if purpose != "TxDefaultProfile":
                return False, f"charger rejected the {purpose}"
            rec.tx_default_refused = True
            return await self._as_max_profile(profile)
        if purpose == "TxProfile" and rec.max_profile_id is not None:
            # Forget the cap only once the charger confirms it is gone: a cap left behind (a
            # 0 W pause, kept across reboots) would hold every later session at its limit.
            # Until then it is cleared again with every TxProfile sent.
            try:
                cleared = await with_timeout(
                    self.csms.clear_profile(self.cp_id, rec.max_profile_id), self.timeout_s,
                    "clear charge point max profile",
                )  # fmt: skip
            except DeviceError:
                cleared = False
            if cleared:
                rec.max_profile_id = None
        return True, ""

    async def _as_max_profile(self, profile: dict[str, object]) -> tuple[bool, str]:
        rec = self.csms.record(self.cp_id)
        capped = {**profile, "charging_profile_purpose": "ChargePointMaxProfile"}
        capped.pop("transaction_id", None)
        if not await self._send(capped):
            return False, "charger rejected TxDefaultProfile and ChargePointMaxProfile"
        rec.max_profile_id = int(str(capped["charging_profile_id"]))
        return True, "TxDefaultProfile refused; applied as ChargePointMaxProfile"

    async def _send(self, profile: dict[str, object]) -> bool:
        return await with_timeout(
            self.csms.set_profile(self.cp_id, profile), self.timeout_s, "set charging profile"
        )

    def _constant(self, power_w: float, pid: int, tx: int | None) -> dict[str, object]:
        return P.constant_profile(
            power_w, profile_id=pid, transaction_id=tx, unit=self.unit, phases=self.phases,
            voltage=self.voltage,
        )  # fmt: skip

    async def close(self) -> None:
        return None
