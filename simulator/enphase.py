"""An Enphase IQ Gateway (Envoy, firmware 7+) on loopback HTTPS over a SiteWorld: the CT meters,
the IQ Battery aggregate and power, and a stateful tariff document whose storage settings drive
the world. Every request needs ``Authorization: Bearer <JWT>``.

The world follows the storage settings: ``backup`` with charge-from-grid fills the battery from
the grid at its own rate; ``backup`` without it keeps the charge (PV may still add); otherwise
self-use with the reserve as the floor. Faults: refuse_connections, hang, malformed,
expire_token (401 to the token), ignore_commands (the PUT is answered, nothing changes) and
revert_after_s (the Enphase cloud puts back the previous storage settings that many simulated
seconds after a local change).

It also answers what pyenphase reads to take it for a gateway: ``/info`` (XML, no token, as on
every gateway: serial, part number, firmware, metered), ``/auth/check_jwt`` (sets the session
cookie), the production reports (``/production.json``, ``/api/v1/production``, the
microinverters at ``/api/v1/production/inverters``) and the inventories (``/inventory.json``,
``/ivp/ensemble/inventory`` with the IQ Battery). The world keeps no per-day totals, so the
"today" and "last seven days" counters read 0; lifetime counters run from the world's start.
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
# Identity: an IQ Combiner's gateway (part number 800-00654) on firmware 8, metered.
PART_NUMBER = "800-00654-r08"
FIRMWARE = "D8.2.4382"
BATTERY_SERIAL = "482212345678"
BATTERY_PART_NUMBER = "830-01760-r37"
MICROINVERTERS = 12  # IQ8A microinverters (366 W peak output each) behind the production CT
MICRO_SERIAL_BASE = 122130000000
MICRO_PART_NUMBER = "800-01391-r02"
MICRO_MAX_W = 366
UNAUTHENTICATED = frozenset({"/info"})


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
        r.add_get("/info", self._info)
        r.add_get("/auth/check_jwt", self._check_jwt)
        r.add_get("/production.json", self._production_json)
        r.add_get("/api/v1/production", self._production_v1)
        r.add_get("/api/v1/production/inverters", self._microinverters)
        r.add_get("/inventory.json", self._inventory)
        r.add_get("/ivp/ensemble/inventory", self._ensemble_inventory)
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
        if request.path in UNAUTHENTICATED:
            return await handler(request)
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

    # --- identity, production and inventory (what pyenphase probes) ---------------------------

    async def _info(self, request: web.Request) -> web.StreamResponse:
        ts = int(self.world.clock.now().timestamp())
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><envoy_info>'
            f"<time>{ts}</time><device><sn>{self.serial}</sn><pn>{PART_NUMBER}</pn>"
            f"<software>{FIRMWARE}</software><euaid>4c8675</euaid><seqnum>0</seqnum>"
            "<apiver>1</apiver><imeter>true</imeter></device>"
            "<web-tokens>true</web-tokens></envoy_info>"
        )  # fmt: skip
        return web.Response(text=xml, content_type="application/xml")

    async def _check_jwt(self, request: web.Request) -> web.StreamResponse:
        resp = web.Response(text="<!DOCTYPE html><h2>Valid token.</h2>\n", content_type="text/html")
        resp.set_cookie("sessionId", f"sim-session-{self.puts}", secure=True, httponly=True)
        return resp

    def _eim(self, measurement: str, ts: int, w_now: float, wh_lifetime: float) -> dict[str, Any]:
        return {
            "type": "eim", "activeCount": 1, "measurementType": measurement, "readingTime": ts,
            "wNow": w_now, "whLifetime": wh_lifetime, "varhLeadLifetime": 0.0,
            "varhLagLifetime": 0.0, "vahLifetime": wh_lifetime, "rmsCurrent": abs(w_now) / 240.1,
            "rmsVoltage": 240.1, "reactPwr": 0.0, "apprntPwr": abs(w_now), "pwrFactor": 0.99,
            "whToday": 0.0, "whLastSevenDays": 0.0, "vahToday": 0.0, "varhLeadToday": 0.0,
            "varhLagToday": 0.0, "lines": [],
        }  # fmt: skip

    async def _production_json(self, request: web.Request) -> web.StreamResponse:
        s = self.world.snapshot()
        ts = int(s.at.timestamp())
        net_wh = (s.import_kwh - s.export_kwh) * 1000
        return self._json({
            "production": [
                {"type": "inverters", "activeCount": MICROINVERTERS, "readingTime": ts,
                 "wNow": round(s.pv_w), "whLifetime": round(s.pv_kwh * 1000)},
                self._eim("production", ts, s.pv_w, s.pv_kwh * 1000),
            ],
            "consumption": [
                self._eim("total-consumption", ts, s.load_w, s.load_kwh * 1000),
                self._eim("net-consumption", ts, s.grid_w, net_wh),
            ],
            # No AC Battery here: the IQ Battery reports through the ensemble endpoints.
            "storage": [{"type": "acb", "activeCount": 0, "readingTime": 0, "wNow": 0,
                         "whNow": 0, "state": "idle"}],
        })  # fmt: skip

    async def _production_v1(self, request: web.Request) -> web.StreamResponse:
        s = self.world.snapshot()
        return self._json({"wattHoursToday": 0, "wattHoursSevenDays": 0,
                           "wattHoursLifetime": round(s.pv_kwh * 1000),
                           "wattsNow": round(s.pv_w)})  # fmt: skip

    def micro_watts(self) -> list[int]:
        """The PV power shared over the microinverters (their sum is the PV power, rounded)."""
        total = round(self.world.snapshot().pv_w)
        share, extra = divmod(total, MICROINVERTERS)
        return [share + (1 if i < extra else 0) for i in range(MICROINVERTERS)]

    async def _microinverters(self, request: web.Request) -> web.StreamResponse:
        ts = int(self.world.clock.now().timestamp())
        return self._json([
            {"serialNumber": str(MICRO_SERIAL_BASE + i), "lastReportDate": ts, "devType": 1,
             "lastReportWatts": w, "maxReportWatts": MICRO_MAX_W}
            for i, w in enumerate(self.micro_watts())
        ])  # fmt: skip

    async def _inventory(self, request: web.Request) -> web.StreamResponse:
        ts = str(int(self.world.clock.now().timestamp()))
        producing = self.world.snapshot().pv_w > 0
        pcus = [{
            "part_num": MICRO_PART_NUMBER, "installed": "1700000000",
            "serial_num": str(MICRO_SERIAL_BASE + i), "device_status": ["envoy.global.ok"],
            "last_rpt_date": ts, "admin_state": 1, "dev_type": 1, "created_date": "1700000000",
            "img_load_date": "1700000000", "img_pnum_running": "520-00082-r01-v04.30.32",
            "ptpn": "540-00242-r01-v04.30.12", "chaneid": 1627390224 + i, "device_control":
            [{"gficlearset": False}], "producing": producing, "communicating": True,
            "provisioned": True, "operating": True, "phase": "ph-a",
        } for i in range(MICROINVERTERS)]  # fmt: skip
        return self._json([{"type": "PCU", "devices": pcus}, {"type": "ACB", "devices": []},
                           {"type": "NSRB", "devices": []}])  # fmt: skip

    async def _ensemble_inventory(self, request: web.Request) -> web.StreamResponse:
        b = self.world.battery
        s = self.world.snapshot()
        ts = int(s.at.timestamp())
        return self._json([{"type": "ENCHARGE", "devices": [{
            "part_num": BATTERY_PART_NUMBER, "installed": 1700000000, "serial_num": BATTERY_SERIAL,
            "device_status": ["envoy.global.ok", "prop.done"], "last_rpt_date": ts,
            "admin_state": 6, "admin_state_str": "ENCHG_STATE_READY", "created_date": 1700000000,
            "img_load_date": 1700000000, "img_pnum_running": "2.6.5973_rel/22.11",
            "bmu_fw_version": "2.1.34", "communicating": True, "sleep_enabled": False,
            "percentFull": round(s.battery_soc_pct), "temperature": 21, "maxCellTemp": 22,
            "comm_level_sub_ghz": 5, "comm_level_2_4_ghz": 5, "led_status": 17,
            "dc_switch_off": False, "encharge_rev": 2,
            "encharge_capacity": round(b.capacity_kwh * 1000), "phase": "ph-a",
            "der_index": 1,
        }]}])  # fmt: skip

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
