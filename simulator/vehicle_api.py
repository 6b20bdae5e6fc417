"""A car maker's cloud API on loopback HTTPS, serving :class:`simulator.ev.EV`'s state of charge.

Shaped like the common owner APIs (Tesla's is the model the others copy):
``GET /api/1/vehicles/{vin}/vehicle_data`` with ``Authorization: Bearer <token>`` answers
``{"response": {"vin", "state", "charge_state": {"battery_level", "charging_state",
"charge_limit_soc", "timestamp"}}}``, the timestamp in epoch milliseconds.
``POST /oauth2/v3/token`` with ``{"grant_type": "refresh_token", "refresh_token"}`` issues a new
access token (and rotates the refresh token), as OAuth servers do; :meth:`expire_access_token`
makes the current access token stale the way time would.

TLS uses a throwaway self-signed certificate for 127.0.0.1 made with the ``openssl`` command
(the ``cryptography`` package is not a dependency); clients trust it through :attr:`cafile`.

Faults (:class:`simulator.faults.Faults`): ``expire_token`` answers 401 to every token, access
and refresh alike (credentials revoked: a person must log in again),
``hang`` accepts and never answers, ``malformed`` answers with broken JSON,
``refuse_connections`` drops the connection without an answer.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiohttp import web

from core.clock import Clock, SystemClock
from simulator.ev import EV
from simulator.faults import Faults
from simulator.https_site import HttpsSite
from simulator.serve import serve_until_interrupted


class VehicleApiSimulator:
    def __init__(
        self, ev: EV, clock: Clock, *, vin: str = "5YJ3E7EB0KF000001",
        token: str = "sim-access-token", refresh_token: str = "sim-refresh-token",
        charge_limit_soc: int = 90,
        faults: Faults | None = None,
    ) -> None:  # fmt: skip
        self.ev, self.clock = ev, clock
        self.vin, self.token, self.refresh_token = vin, token, refresh_token
        self.tokens_issued = 0
        self.charge_limit_soc = charge_limit_soc
        self.faults = faults or Faults()
        self.requests = 0
        self.site = HttpsSite(self.faults, "vehicle-api")
        self.site.app.router.add_get("/api/1/vehicles/{vin}/vehicle_data", self._vehicle_data)
        self.site.app.router.add_post("/oauth2/v3/token", self._token)

    @property
    def port(self) -> int:
        return self.site.port

    @property
    def cafile(self) -> Path:
        return self.site.cafile

    @property
    def base_url(self) -> str:
        return self.site.base_url

    def charge_state(self) -> dict[str, object]:
        self.ev.advance()
        if not self.ev.plugged_in:
            charging = "Disconnected"
        elif self.ev.full:
            charging = "Complete"
        elif self.ev.draw_w() > 0:
            charging = "Charging"
        else:
            charging = "Stopped"
        return {
            "battery_level": round(self.ev.soc_pct),
            "charging_state": charging,
            "charge_limit_soc": self.charge_limit_soc,
            "charger_power": round(self.ev.draw_w() / 1000),
            "timestamp": int(self.clock.now().timestamp() * 1000),
        }

    def expire_access_token(self) -> None:
        """The current access token stops working, as when its lifetime runs out."""
        self.tokens_issued += 1
        self.token = f"sim-access-token-{self.tokens_issued}"

    async def _token(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "invalid_request"}, status=400)
        if not isinstance(body, dict) or body.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if self.faults.expire_token or body.get("refresh_token") != self.refresh_token:
            return web.json_response({"error": "invalid_grant"}, status=401)
        self.expire_access_token()
        self.refresh_token = f"sim-refresh-token-{self.tokens_issued}"
        return web.json_response(
            {"access_token": self.token, "refresh_token": self.refresh_token, "expires_in": 28800}
        )

    async def _vehicle_data(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "invalid bearer token"}, status=401)
        if self.faults.expire_token:
            return web.json_response({"error": "token expired"}, status=401)
        if request.match_info["vin"] != self.vin:
            return web.json_response({"error": "not_found"}, status=404)
        if self.faults.malformed:
            broken = '{"response": {"charge_state": '
            return web.Response(text=broken, content_type="application/json")
        body = {
            "response": {
                "vin": self.vin,
                "state": "online",
                "charge_state": self.charge_state(),
            }
        }
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def start(self, port: int = 0) -> int:
        """Serve on 127.0.0.1 (port 0: a free one) and return the port."""
        return await self.site.start(port)

    async def stop(self) -> None:
        await self.site.stop()


async def run_cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator vehicle-api")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--vin", default="5YJ3E7EB0KF000001")
    parser.add_argument("--token", default="sim-access-token")
    parser.add_argument("--soc", type=float, default=40.0, help="the car's SoC in %%")
    parser.add_argument("--capacity-kwh", type=float, default=60.0)
    args = parser.parse_args(argv)
    if not 0 <= args.soc <= 100:
        parser.error(f"--soc: {args.soc} is outside 0..100")
    clock = SystemClock()
    ev = EV(clock, capacity_kwh=args.capacity_kwh, soc_kwh=args.capacity_kwh * args.soc / 100)
    sim = VehicleApiSimulator(ev, clock, vin=args.vin, token=args.token)
    await sim.start(args.port)
    print(f"vehicle API simulator: {sim.base_url} (CA file {sim.cafile})", flush=True)
    await serve_until_interrupted(sim.stop)
