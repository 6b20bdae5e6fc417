"""Enphase IQ Gateway (Envoy, firmware 7+) over local HTTPS with the owner's JWT.

The HTTP layer is flexd's own (:mod:`devices.http_json`): ``pyenphase``'s ``Envoy`` always
speaks to port 443, probes every endpoint at set-up and fetches tokens from Enlighten; flexd
needs a given port, a given token and nothing leaving the house. Payloads are parsed with
pyenphase's models (:mod:`devices.enphase.api`).

The Enphase cloud may put back its own copy of the storage settings minutes after a local
change. The adapter remembers what it last set and, on every read, if the gateway's settings
differ, writes them again and counts the revert (``reverts_detected``).
"""

from __future__ import annotations

import ssl
from typing import ClassVar

import structlog

from core.clock import Clock
from devices.base import (
    BatteryMode,
    CommandResult,
    InverterCommand,
    InverterState,
    SetBatteryMode,
    SetReserve,
)
from devices.enphase import api as E
from devices.errors import NotSupported
from devices.http_json import JsonHttp
from devices.retry import with_timeout

log = structlog.get_logger("flexd.devices.enphase.adapter")


class EnphaseAdapter:
    brand: ClassVar[str] = "enphase"
    battery_modes: ClassVar[frozenset[BatteryMode]] = frozenset(BatteryMode) - {
        BatteryMode.FORCE_DISCHARGE
    }

    def __init__(
        self, host: str, port: int, clock: Clock, *, token: str,
        ssl_context: ssl.SSLContext | bool = True, timeout_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.host, self.port, self.clock = host, port, clock
        self.base = f"https://{host}:{port}"
        self._token = token
        self.timeout_s = timeout_s
        self._http = JsonHttp("enphase", ssl_context)
        self.reserve_pct = 20.0  # the owner's reserve, restored by SELF_USE
        self._desired: E.Storage | None = None
        self._hold_reserve: float | None = None
        self._soc_pct = 50.0
        self.reverts_detected = 0

    def __repr__(self) -> str:  # never the token
        return f"EnphaseAdapter({self.base!r})"

    async def _get(self, path: str) -> object:
        return await self._http.request("GET", f"{self.base}{path}", token=self._token)

    # --- reads ----------------------------------------------------------------------------------

    async def read_state(self) -> InverterState:
        return await with_timeout(self._read_state(), self.timeout_s, "enphase read")

    async def _read_state(self) -> InverterState:
        meters = E.parse_meters(await self._get(E.URL_METERS), await self._get(E.URL_READINGS))
        battery = E.parse_battery(await self._get(E.URL_SECCTRL), await self._get(E.URL_POWER))
        tariff = await self._get(E.URL_TARIFF)
        storage = E.Storage.of(E.parse_storage(tariff))
        self._soc_pct = battery.soc_pct
        if self._desired is not None and storage != self._desired:
            # The cloud (or someone in the app) changed it back: put flexd's setting again.
            self.reverts_detected += 1
            log.warning("enphase_setting_reverted", gateway=self.base,
                        found=str(storage), wanted=str(self._desired))  # fmt: skip
            await self._put(tariff, self._desired)
            storage = self._desired
        grid_w = meters.grid_with(battery.power_w)
        return InverterState(
            measured_at=self.clock.now(),
            battery_soc_pct=battery.soc_pct,
            battery_capacity_kwh=battery.capacity_kwh,
            battery_w=battery.power_w,
            pv_w=meters.pv_w,
            grid_w=grid_w,
            load_w=max(0.0, meters.pv_w + grid_w + battery.power_w),
            mode=E.mode_of(storage, self._hold_reserve),
            reserve_pct=storage.reserve_pct,
            raw={"meters": meters, "battery": battery, "storage": storage},
            grid_import_kwh=meters.import_kwh,
            grid_export_kwh=meters.export_kwh,
        )

    # --- control --------------------------------------------------------------------------------

    async def _put(self, tariff: object, want: E.Storage) -> None:
        assert isinstance(tariff, dict)
        body = E.tariff_with(tariff, want)
        await self._http.request("PUT", f"{self.base}{E.URL_TARIFF}", token=self._token,
                                 payload=body)  # fmt: skip

    async def apply(self, command: InverterCommand) -> CommandResult:
        return await with_timeout(self._apply(command), self.timeout_s, "enphase command")

    async def _apply(self, command: InverterCommand) -> CommandResult:
        tariff = await self._get(E.URL_TARIFF)
        current = E.Storage.of(E.parse_storage(tariff))
        detail = ""
        if isinstance(command, SetReserve):
            self.reserve_pct = command.reserve_pct
            want = E.Storage(current.mode, float(round(command.reserve_pct)),
                             current.charge_from_grid)  # fmt: skip
        elif isinstance(command, SetBatteryMode):
            want = E.storage_for(command.mode, self._soc_pct, self.reserve_pct)
            holding = command.mode == BatteryMode.HOLD
            self._hold_reserve = want.reserve_pct if holding else None
            if command.mode == BatteryMode.FORCE_CHARGE:
                detail = "power not settable: the battery charges at its own rate"
        else:
            raise NotSupported(f"enphase cannot apply {type(command).__name__}")
        await self._put(tariff, want)
        got = E.Storage.of(E.parse_storage(await self._get(E.URL_TARIFF)))
        if got != want:
            self._desired = None  # not honoured now: nothing to re-assert until it is
            return CommandResult(command, False, f"not honoured: gateway has {got}, wanted {want}")
        self._desired = want
        return CommandResult(command, True, detail)

    async def close(self) -> None:
        await self._http.close()
