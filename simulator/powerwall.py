"""A Tesla Powerwall on loopback HTTPS over a SiteWorld: the local gateway API (login, meter
aggregates, state of energy with its hidden 5 % reserve, system status, operation) and a
Fleet-API-shaped control API for the energy site, on one port.

The login takes a JSON or a form-encoded body (pypowerwall posts a form) and answers with the
bearer token and the ``AuthCookie``/``UserRecord`` cookies; the local reads accept either.
``/api/status`` and ``/api/site_info`` carry the gateway's identity (DIN, firmware, nominal
energy).

Local control (``POST /api/operation``) answers 403, as newer gateway firmware does. The world
follows the site settings: grid charging on with the reserve above the SoC charges from the grid
at the battery's own rate; otherwise self-use with the reserve as the floor (a reserve at the
current SoC holds the battery). Faults: refuse_connections, hang, malformed, expire_token
(every token and login refused), ignore_commands (control answered, nothing changes).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from core.clock import Clock, SystemClock
from devices.base import BatteryMode
from devices.powerwall import api as P
from simulator.faults import Faults
from simulator.https_site import HttpsSite
from simulator.serve import serve_until_interrupted
from simulator.world import Battery, SiteWorld

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def powerwall_battery() -> Battery:
    """A Powerwall 2: 13.5 kWh usable; 3.3 kW is its usual grid-charge rate."""
    return Battery(capacity_kwh=13.5, soc_kwh=6.75, max_charge_w=3300, max_discharge_w=5000)


def powerwall_world(clock: Clock) -> SiteWorld:
    return SiteWorld(clock, battery=powerwall_battery())


class PowerwallSimulator:
    def __init__(
        self, world: SiteWorld, faults: Faults | None = None, *, password: str = "sim-password",
        fleet_token: str = "sim-fleet-token", site_id: str = "1689",
        din: str = "1232100-00-E--TG121048001E4G", firmware: str = "24.4.0 0fe780c9",
        site_name: str = "flexd sim",
    ) -> None:  # fmt: skip
        self.world = world
        self.din, self.firmware, self.site_name = din, firmware, site_name
        self.faults = faults or Faults()
        self.password, self.fleet_token, self.site_id = password, fleet_token, site_id
        self.settings = P.SiteSettings("self_consumption", world.reserve_pct, False, "pv_only")
        self._tokens: set[str] = set()
        self.site = HttpsSite(self.faults, "powerwall")
        r = self.site.app.router
        r.add_post("/api/login/Basic", self._login)
        r.add_get("/api/meters/aggregates", self._local(self._aggregates))
        r.add_get("/api/system_status/soe", self._local(self._soe))
        r.add_get("/api/system_status", self._local(self._status))
        r.add_get("/api/status", self._gateway_status)
        r.add_get("/api/site_info", self._local(self._local_site_info))
        r.add_get("/api/site_info/site_name", self._local(self._local_site_name))
        r.add_get("/api/operation", self._local(self._operation))
        r.add_post("/api/operation", self._local(self._forbidden))
        base = "/api/1/energy_sites/{site}"
        r.add_get(f"{base}/site_info", self._fleet(self._site_info))
        for name in ("operation", "backup", "grid_import_export"):
            r.add_post(f"{base}/{name}", self._fleet(self._control))
        self._apply()

    async def start(self, port: int = 0) -> int:
        return await self.site.start(port)

    async def stop(self) -> None:
        await self.site.stop()

    # --- the world ---------------------------------------------------------------------------

    def _apply(self) -> None:
        s = self.settings
        soc = self.world.battery.soc_pct
        if s.grid_charging and s.backup_reserve_pct > soc:
            self.world.set_mode(BatteryMode.FORCE_CHARGE, self.world.battery.max_charge_w)
        else:
            self.world.set_mode(BatteryMode.SELF_USE)
        self.world.set_reserve(min(s.backup_reserve_pct, 100.0))

    # --- auth -------------------------------------------------------------------

    def _local(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            # pypowerwall's default authmode sends the login's cookie instead of the header.
            token = token or request.cookies.get("AuthCookie", "")
            if self.faults.expire_token or token not in self._tokens:
                return web.json_response({"code": 401, "error": "bad credentials"}, status=401)
            return await handler(request)

        return guarded

    def _fleet(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            auth = request.headers.get("Authorization", "")
            if self.faults.expire_token or auth != f"Bearer {self.fleet_token}":
                return web.json_response({"error": "invalid_token"}, status=401)
            if request.match_info["site"] != self.site_id:
                return web.json_response({"error": "not found"}, status=404)
            return await handler(request)

        return guarded

    def _json(self, doc: object) -> web.Response:
        if self.faults.malformed:
            return web.Response(text='{"site": {"instant_power": ', content_type="application/json")
        return web.json_response(doc)

    async def _login(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, object]
        if request.content_type == "application/x-www-form-urlencoded":
            body = dict(await request.post())  # pypowerwall's requests-encoded form
        else:
            try:
                doc = await request.json()
            except json.JSONDecodeError:
                return web.json_response({"code": 400, "error": "bad login body"}, status=400)
            body = doc if isinstance(doc, dict) else {}
        if self.faults.expire_token or body.get("password") != self.password:
            return web.json_response({"code": 401, "error": "bad credentials"}, status=401)
        token = f"local-{len(self._tokens) + 1}"
        self._tokens.add(token)
        email = str(body.get("email", ""))
        resp = self._json({"email": email, "token": token, "roles": ["Home_Owner"]})
        # The gateway also answers with these two cookies; cookie-mode clients send them back.
        resp.set_cookie("AuthCookie", token, secure=True, httponly=True)
        resp.set_cookie("UserRecord", f"sim-user-{email or 'customer'}", secure=True)
        return resp

    # --- local gateway reads ------------------------------------------------------------------

    async def _aggregates(self, request: web.Request) -> web.StreamResponse:
        s = self.world.snapshot()
        meter = {"last_communication_time": s.at.isoformat(), "frequency": 50.0}
        return self._json({
            "site": meter | {"instant_power": s.grid_w, "energy_imported": s.import_kwh * 1000,
                             "energy_exported": s.export_kwh * 1000},
            "battery": meter | {"instant_power": s.battery_w},
            "solar": meter | {"instant_power": s.pv_w, "energy_exported": s.pv_kwh * 1000},
            "load": meter | {"instant_power": s.load_w, "energy_imported": s.load_kwh * 1000},
        })  # fmt: skip

    async def _soe(self, request: web.Request) -> web.StreamResponse:
        self.world.advance()
        self._apply()  # a forced charge ends when the reserve is reached
        return self._json({"percentage": P.gateway_from_usable(self.world.battery.soc_pct)})

    async def _status(self, request: web.Request) -> web.StreamResponse:
        pack_wh = self.world.battery.capacity_kwh * 1000 / (1 - P.HIDDEN_RESERVE_PCT / 100)
        return self._json({"nominal_full_pack_energy": pack_wh, "battery_count": 1})

    async def _gateway_status(self, request: web.Request) -> web.StreamResponse:
        # Unauthenticated on the gateway: installers and clients read it before logging in.
        return self._json({
            "din": self.din, "version": self.firmware, "git_hash": "0fe780c9",
            "device_type": "teg", "sync_type": "v2.1", "is_new": False, "leader": "",
            "followers": None, "commission_count": 1, "up_time_seconds": "52h1m7.1s",
            "start_time": "2026-01-01 00:00:00 +0000", "cellular_disabled": False,
        })  # fmt: skip

    async def _local_site_info(self, request: web.Request) -> web.StreamResponse:
        b = self.world.battery
        return self._json({
            "site_name": self.site_name, "timezone": "Europe/London",
            "nominal_system_energy_kWh": b.capacity_kwh,
            "nominal_system_power_kW": b.max_discharge_w / 1000,
            "grid_code": {"country": "United Kingdom", "utility": "sim"},
        })  # fmt: skip

    async def _local_site_name(self, request: web.Request) -> web.StreamResponse:
        return self._json({"site_name": self.site_name, "timezone": "Europe/London"})

    async def _operation(self, request: web.Request) -> web.StreamResponse:
        s = self.settings
        reserve = P.gateway_from_usable(s.backup_reserve_pct)  # the gateway's own scale
        return self._json({"real_mode": s.mode, "backup_reserve_percent": reserve})

    async def _forbidden(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"code": 403, "error": "local control is disabled"}, status=403)

    # --- fleet-shaped control -----------------------------------------------------------------

    async def _site_info(self, request: web.Request) -> web.StreamResponse:
        s = self.settings
        return self._json({"response": {
            "id": self.site_id, "site_name": self.site_name, "default_real_mode": s.mode,
            "backup_reserve_percent": s.backup_reserve_pct,
            # As the Fleet API documents site_info: both grid settings under components.
            "components": {"battery": True, "solar": True,
                           "customer_preferred_export_rule": s.export_rule,
                           "disallow_charge_from_grid_with_solar_installed": not s.grid_charging},
        }})  # fmt: skip

    async def _control(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        what = request.path.rsplit("/", 1)[-1]
        s = self.settings
        try:
            if what == "operation":
                s = P.SiteSettings(str(body["default_real_mode"]), s.backup_reserve_pct,
                                   s.grid_charging, s.export_rule)  # fmt: skip
            elif what == "backup":
                s = P.SiteSettings(s.mode, float(body["backup_reserve_percent"]),
                                   s.grid_charging, s.export_rule)  # fmt: skip
            else:
                grid = not body.get("disallow_charge_from_grid_with_solar_installed",
                                    not s.grid_charging)  # fmt: skip
                rule = str(body.get("customer_preferred_export_rule", s.export_rule))
                s = P.SiteSettings(s.mode, s.backup_reserve_pct, bool(grid), rule)
            if s.mode not in P.MODES or s.export_rule not in P.EXPORT_RULES:
                raise ValueError("unknown value")
            if not 0 <= s.backup_reserve_pct <= 100:
                raise ValueError("reserve out of range")
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": f"invalid {what}: {exc}"}, status=400)
        if not self.faults.ignore_commands:
            self.settings = s
            self._apply()
        return web.json_response({"response": {"code": 201, "message": "Updated"}})


async def run_cli(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulator powerwall")
    ap.add_argument("--port", type=int, default=8443)
    args = ap.parse_args(argv)
    sim = PowerwallSimulator(powerwall_world(SystemClock()))
    port = await sim.start(args.port)
    print(f"powerwall simulator on https://127.0.0.1:{port} (password {sim.password!r}, "
          f"fleet token {sim.fleet_token!r}, site {sim.site_id})")
    print(f"certificate: {sim.site.cafile}")
    await serve_until_interrupted(sim.stop)
