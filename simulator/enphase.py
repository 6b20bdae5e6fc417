"""An Enphase IQ Gateway (Envoy, firmware 7+) on loopback HTTPS over a SiteWorld: the CT meters,
the IQ Battery aggregate and power, and a stateful tariff document whose storage settings drive
the world. Every request needs ``Authorization: Bearer <JWT>``.

The world follows the storage settings: ``backup`` with charge-from-grid fills the battery from
the grid at its own rate; ``backup`` without it keeps the charge (PV may still add); otherwise
self-use with the reserve as the floor. Faults: refuse_connections, hang, malformed,
expire_token (401 to the token), ignore_commands (the PUT is answered, nothing changes) and
revert_after_s (the Enphase cloud puts back the previous storage settings that many simulated
seconds after a local change).
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from core.clock import Clock, SystemClock
from devices.base import BatteryMode
from simulator.faults import Faults
from simulator.https_site import HttpsSite
from simulator.serve import serve_until_interrupted
from simulator.world import Battery, SiteWorld

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROD_EID, NET_EID = 704643328, 704643584


def enphase_battery() -> Battery:
    """An IQ Battery 10T: 10.08 kWh usable, 3.84 kW continuous."""
    return Battery(capacity_kwh=10.08, soc_kwh=5.0, max_charge_w=3840, max_discharge_w=3840)


def enphase_world(clock: Clock) -> SiteWorld:
    return SiteWorld(clock, battery=enphase_battery())


def make_jwt(serial: str) -> str:
    """A token shaped like the gateway's (header.claims.signature); the simulator only
    compares it, as a gateway compares it with what Enlighten issued."""

    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    claims = {"aud": serial, "iss": "Entrez", "enphaseUser": "owner", "exp": 4102444800}
    return f"{part({'kid': 'sim', 'typ': 'JWT', 'alg': 'ES256'})}.{part(claims)}.c2ln"


class EnphaseSimulator:
    def __init__(self, world: SiteWorld, faults: Faults | None = None,
                 serial: str = "122107032918") -> None:  # fmt: skip
        self.world = world
        self.faults = faults or Faults()
        self.serial = serial
        self.token = make_jwt(serial)
        self.tariff: dict[str, Any] = {"tariff": {
            "currency": {"code": "GBP"}, "logger": "mylogger", "date": "1700000000",
            "single_rate": {"rate": 0.245, "sell": 0.15}, "seasons": [], "seasons_sell": [],
            "storage_settings": {"mode": "self-consumption", "operation_mode_sub_type": "",
                                 "reserved_soc": float(world.reserve_pct), "very_low_soc": 5,
                                 "charge_from_grid": False, "date": "1700000000"},
        }}  # fmt: skip
        self.puts = 0
        self.reverts = 0
        self._previous: dict[str, Any] | None = None
        self._changed_at: datetime | None = None
        self.site = HttpsSite(self.faults, "enphase")
        self.site.app.middlewares.append(self._guard)
        r = self.site.app.router
        r.add_get("/ivp/meters", self._meters)
        r.add_get("/ivp/meters/readings", self._readings)
        r.add_get("/ivp/ensemble/secctrl", self._secctrl)
        r.add_get("/ivp/ensemble/power", self._power)
        r.add_get("/admin/lib/tariff", self._get_tariff)
        r.add_put("/admin/lib/tariff", self._put_tariff)
        self._apply()

    async def start(self, port: int = 0) -> int:
        return await self.site.start(port)

    async def stop(self) -> None:
        await self.site.stop()

    # --- the world ----------------------------------------------------------------------------

    @property
    def storage(self) -> dict[str, Any]:
        s: dict[str, Any] = self.tariff["tariff"]["storage_settings"]
        return s

    def _apply(self) -> None:
        s = self.storage
        if s["mode"] == "backup" and s["charge_from_grid"]:
            self.world.set_mode(BatteryMode.FORCE_CHARGE, self.world.battery.max_charge_w)
        elif s["mode"] == "backup":
            self.world.set_mode(BatteryMode.HOLD)
        else:
            self.world.set_mode(BatteryMode.SELF_USE)
        self.world.set_reserve(float(s["reserved_soc"]))

    def _cloud_revert(self) -> None:
        """The Enphase cloud puts its copy back some minutes after a local change."""
        delay = self.faults.revert_after_s
        if delay is None or self._previous is None or self._changed_at is None:
            return
        if (self.world.clock.now() - self._changed_at).total_seconds() >= delay:
            self.tariff, self._previous, self._changed_at = self._previous, None, None
            self.reverts += 1
            self._apply()

    # --- the wire -----------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        bearer = request.headers.get("Authorization") == f"Bearer {self.token}"
        if self.faults.expire_token or not bearer:
            return web.Response(status=401, text="Unauthorized")
        self._cloud_revert()
        return await handler(request)

    def _json(self, doc: object) -> web.Response:
        if self.faults.malformed:
            return web.Response(text='[{"eid": 7046', content_type="application/json")
        return web.json_response(doc)

    async def _meters(self, request: web.Request) -> web.StreamResponse:
        common = {"state": "enabled", "phaseMode": "single", "phaseCount": 1,
                  "meteringStatus": "normal", "statusFlags": []}  # fmt: skip
        return self._json([{"eid": PROD_EID, "measurementType": "production"} | common,
                           {"eid": NET_EID, "measurementType": "net-consumption"} | common])

    async def _readings(self, request: web.Request) -> web.StreamResponse:
        s = self.world.snapshot()
        ts = int(s.at.timestamp())

        def reading(eid: int, power: float, dlvd: float, rcvd: float) -> dict[str, Any]:
            return {"eid": eid, "timestamp": ts, "actEnergyDlvd": dlvd, "actEnergyRcvd": rcvd,
                    "activePower": power, "pwrFactor": 0.99, "voltage": 240.1,
                    "current": abs(power) / 240.1, "freq": 50.0}  # fmt: skip

        return self._json([reading(PROD_EID, s.pv_w, s.pv_kwh * 1000, 0.0),
                           reading(NET_EID, s.grid_w, s.import_kwh * 1000, s.export_kwh * 1000)])

    async def _secctrl(self, request: web.Request) -> web.StreamResponse:
        b = self.world.battery
        self.world.advance()
        cap_wh = round(b.capacity_kwh * 1000)
        return self._json({
            "ENC_agg_soc": round(b.soc_pct), "ENC_agg_avail_energy": round(b.soc_kwh * 1000),
            "ENC_agg_backup_energy": 0, "adjusted_backup_soc": round(self.world.reserve_pct),
            "configured_backup_soc": round(self.world.reserve_pct),
            "Enc_max_available_capacity": cap_wh,
        })  # fmt: skip

    async def _power(self, request: web.Request) -> web.StreamResponse:
        s = self.world.snapshot()
        return self._json({"devices:": [{"serial_num": 482212345678,
                                         "real_power_mw": round(s.battery_w * 1000),
                                         "apparent_power_mva": round(abs(s.battery_w) * 1000),
                                         "soc": round(s.battery_soc_pct)}]})  # fmt: skip

    async def _get_tariff(self, request: web.Request) -> web.StreamResponse:
        return self._json(self.tariff)

    async def _put_tariff(self, request: web.Request) -> web.StreamResponse:
        try:
            doc = await request.json()
            settings = doc["tariff"]["storage_settings"]
            if settings["mode"] not in ("self-consumption", "backup", "economy", "savings-mode"):
                raise ValueError(f"mode {settings['mode']!r}")
            if not 0 <= float(settings["reserved_soc"]) <= 100:
                raise ValueError("reserved_soc")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return web.json_response({"message": f"bad tariff: {exc}"}, status=400)
        self.puts += 1
        if not self.faults.ignore_commands:
            self._previous = copy.deepcopy(self.tariff)
            self._changed_at = self.world.clock.now()
            self.tariff = {"tariff": doc["tariff"]}
            self._apply()
        return web.json_response({"message": "success"})


async def run_cli(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulator enphase")
    ap.add_argument("--port", type=int, default=8443)
    args = ap.parse_args(argv)
    sim = EnphaseSimulator(enphase_world(SystemClock()))
    port = await sim.start(args.port)
    print(f"enphase gateway simulator on https://127.0.0.1:{port}")
    print(f"token: {sim.token}")
    print(f"certificate: {sim.site.cafile}")
    await serve_until_interrupted(sim.stop)
