"""Tesla Powerwall: reads from the local gateway over HTTPS, control through the Fleet-API-shaped
energy site endpoints (the gateway answers local control with 403). Own code on aiohttp; the
payloads and the mode mapping are in :mod:`devices.powerwall.api`.
"""

from __future__ import annotations

import ssl
from typing import ClassVar

from core.clock import Clock
from devices.base import (
    BatteryMode,
    CommandResult,
    InverterCommand,
    InverterState,
    SetBatteryMode,
    SetReserve,
)
from devices.errors import AuthenticationFailed, BadPayload, NotSupported
from devices.http_json import JsonHttp
from devices.powerwall import api as P
from devices.retry import with_timeout


class PowerwallAdapter:
    brand: ClassVar[str] = "powerwall"
    battery_modes: ClassVar[frozenset[BatteryMode]] = frozenset(BatteryMode) - {
        BatteryMode.FORCE_DISCHARGE
    }

    def __init__(
        self, host: str, port: int, clock: Clock, *, password: str, fleet_token: str,
        site_id: str, fleet_url: str | None = None, email: str = "",
        ssl_context: ssl.SSLContext | bool = True, timeout_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.host, self.port, self.clock = host, port, clock
        self.gateway = f"https://{host}:{port}"
        self.fleet = (fleet_url or self.gateway).rstrip("/") + f"/api/1/energy_sites/{site_id}"
        self._password, self._fleet_token, self._email = password, fleet_token, email
        self.timeout_s = timeout_s
        self._http = JsonHttp("powerwall", ssl_context)
        # The gateway's certificate is its own (self-signed); a separate cloud API is verified
        # against the system's CAs.
        self._fleet_http = self._http if fleet_url is None else JsonHttp("powerwall fleet API")
        self._token: str | None = None
        self._capacity_kwh: float | None = None
        self.reserve_pct = 20.0  # the owner's reserve, restored by SELF_USE
        self._hold_reserve: float | None = None
        self._soc_pct = 50.0
        self._export_rule = "pv_only"  # the owner's, as last read: kept by every mode

    def __repr__(self) -> str:  # never the password or tokens
        return f"PowerwallAdapter({self.gateway!r})"

    # --- transport ----------------------------------------------------------------------------

    async def _login(self) -> None:
        body = {"username": "customer", "email": self._email, "password": self._password,
                "force_sm_off": False}  # fmt: skip
        doc = await self._http.request("POST", f"{self.gateway}/api/login/Basic", payload=body)
        token = doc.get("token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise BadPayload("powerwall login: no token in the answer")
        self._token = token

    async def _local(self, path: str) -> object:
        """GET a local gateway path, logging in first and once more if the token is refused."""
        if self._token is None:
            await self._login()
        try:
            return await self._http.request("GET", f"{self.gateway}{path}", token=self._token)
        except AuthenticationFailed:
            self._token = None
            await self._login()
            return await self._http.request("GET", f"{self.gateway}{path}", token=self._token)

    async def _fleet(self, method: str, path: str, body: object = None) -> object:
        url = f"{self.fleet}/{path}"
        return await self._fleet_http.request(method, url, token=self._fleet_token, payload=body)

    # --- reads ----------------------------------------------------------------------------------

    async def read_state(self) -> InverterState:
        return await with_timeout(self._read_state(), self.timeout_s, "powerwall read")

    async def _read_state(self) -> InverterState:
        agg = P.parse_aggregates(await self._local("/api/meters/aggregates"))
        soc = P.parse_soe(await self._local("/api/system_status/soe"))
        if self._capacity_kwh is None:
            self._capacity_kwh = P.parse_capacity_kwh(await self._local("/api/system_status"))
        op = await self._local("/api/operation")
        if not isinstance(op, dict) or not isinstance(op.get("backup_reserve_percent"),
                                                      (int, float)):  # fmt: skip
            raise BadPayload("powerwall operation: backup_reserve_percent missing")
        settings = P.parse_site_info(await self._fleet("GET", "site_info"))
        self._soc_pct = soc
        self._export_rule = settings.export_rule
        return InverterState(
            measured_at=self.clock.now(),
            battery_soc_pct=soc,
            battery_capacity_kwh=self._capacity_kwh,
            battery_w=agg.battery_w,
            pv_w=agg.solar_w,
            grid_w=agg.site_w,
            load_w=agg.load_w,
            mode=P.mode_of(settings, soc, self._hold_reserve),
            reserve_pct=P.usable_from_gateway(float(op["backup_reserve_percent"])),
            raw={"aggregates": agg, "site": settings},
            grid_import_kwh=agg.imported_kwh,
            grid_export_kwh=agg.exported_kwh,
        )

    # --- control --------------------------------------------------------------------------------

    async def apply(self, command: InverterCommand) -> CommandResult:
        return await with_timeout(self._apply(command), self.timeout_s, "powerwall command")

    async def _apply(self, command: InverterCommand) -> CommandResult:
        detail = ""
        if isinstance(command, SetReserve):
            self.reserve_pct = command.reserve_pct
            calls = [P.Call("backup", {"backup_reserve_percent": round(command.reserve_pct)})]
            want_reserve = float(round(command.reserve_pct))
            want = None
        elif isinstance(command, SetBatteryMode):
            want = P.settings_for(command.mode, self._soc_pct, self.reserve_pct,
                                  self._export_rule)  # fmt: skip
            holding = command.mode == BatteryMode.HOLD
            self._hold_reserve = want.backup_reserve_pct if holding else None
            calls = P.settings_calls(want)
            want_reserve = want.backup_reserve_pct
            if command.mode == BatteryMode.FORCE_CHARGE:
                detail = "power not settable: the Powerwall charges at its own rate"
        else:
            raise NotSupported(f"powerwall cannot apply {type(command).__name__}")
        for call in calls:
            await self._fleet("POST", call.path, call.body)
        got = P.parse_site_info(await self._fleet("GET", "site_info"))
        off = []
        if abs(got.backup_reserve_pct - want_reserve) >= 0.5:
            off.append(f"backup reserve is {got.backup_reserve_pct:g}, wanted {want_reserve:g}")
        if want is not None:
            if got.mode != want.mode:
                off.append(f"mode is {got.mode}, wanted {want.mode}")
            if got.grid_charging != want.grid_charging:
                off.append(f"grid charging is {'on' if got.grid_charging else 'off'}")
            if got.export_rule != want.export_rule:
                off.append(f"export rule is {got.export_rule}, wanted {want.export_rule}")
        if off:
            return CommandResult(command, False, "not honoured: " + "; ".join(off))
        return CommandResult(command, True, detail)

    async def close(self) -> None:
        await self._http.close()
        await self._fleet_http.close()
