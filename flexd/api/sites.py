"""Site routes for the web page: each site's health, the half-hour now, the next 24 hours of its
plan in UK local time, and today's and yesterday's energy and cost by band.

An app token sees its own account's sites only (another account's is "not found", exactly as an
unknown id); an admin token sees every site; a billing token none (403).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from core.timegrid import LONDON, SLOT, day_bounds, half_hour_start
from flexd.api.auth import TOKEN
from flexd.control.plan import Plan
from flexd.control.runtime import SiteRuntime
from flexd.report.bands import by_band
from flexd.service import Service
from flexd.storage.rows import ts

HOURS_SHOWN = 24


def _account(request: web.Request) -> str | None:
    """The account whose sites this token may see; None for an admin (every site)."""
    token = request[TOKEN]
    if token.role == "admin":
        return None
    if token.role != "app" or token.account is None:
        raise web.HTTPForbidden(text="only app or admin tokens may read sites")
    return token.account


def _iso(t: datetime | None) -> str | None:
    return None if t is None else ts(t)


async def plan_made_at(service: Service, site: SiteRuntime) -> datetime | None:
    """When the site's current plan was made: the loop's note, else the stored plan's time
    (a daemon restarted with its last plan restored has not re-planned yet)."""
    if site.plan_made_at is not None:
        return site.plan_made_at
    latest = await service.storage.latest_plan(site.config.id)
    return None if latest is None else latest[0]


async def site_summary(service: Service, site: SiteRuntime, now: datetime) -> dict[str, Any]:
    """One row of the operator's table: device health, the plan's age, failed cycles."""
    cfg = site.config
    health = {d.id: d.health(now).value for d in site.devices.values()}
    made = await plan_made_at(service, site)
    counts = Counter(health.values())
    return {
        "id": cfg.id,
        "account": cfg.account,
        "tariff": cfg.tariff,
        "devices": len(health),
        "online": counts["online"],
        "stale": counts["stale"],
        "offline": counts["offline"],
        "unknown": counts["unknown"],
        "stale_devices": sorted(d for d, h in health.items() if h == "stale"),
        "offline_devices": sorted(d for d, h in health.items() if h == "offline"),
        "plan_made_at": _iso(made),
        "plan_age_s": None if made is None else round((now - made).total_seconds(), 1),
        "failed_cycles": int(service.metrics.cycle_failures.get(site=cfg.id)),
    }


def _local(t: datetime) -> dict[str, str]:
    local = t.astimezone(LONDON)
    return {"time": local.strftime("%H:%M"), "date": local.date().isoformat(),
            "offset": local.strftime("%z")}  # fmt: skip


def plan_window(plan: Plan, now: datetime, hours: int = HOURS_SHOWN) -> tuple[int, int]:
    """The plan's slot indexes [first, last) from the half-hour now, at most ``hours`` long."""
    first = plan.slot_index(half_hour_start(now))
    if first is None:
        first = 0 if now < plan.start else plan.n
    return first, min(plan.n, first + hours * 60 // plan.slot_minutes)


async def plan_doc(service: Service, site: SiteRuntime, now: datetime) -> dict[str, Any]:
    """The next 24 hours of the site's plan, each half-hour with its UK local time."""
    plan = site.plan
    made = await plan_made_at(service, site)
    doc: dict[str, Any] = {"site": site.config.id, "now": ts(now), "plan_made_at": _iso(made)}
    if plan is None:
        return {**doc, "slot_minutes": 30, "starts": [], "local": [], "evs": {}}
    a, b = plan_window(plan, now)
    r = lambda xs: [round(x, 3) for x in xs[a:b]]  # noqa: E731
    starts = plan.starts()[a:b]
    window_end = starts[-1] + SLOT if starts else now
    evs: dict[str, Any] = {}
    for dev in site.chargers():
        ev = dev.config.ev
        capacity = ev.capacity_kwh if ev is not None else None
        ready_by = dev.preferences.ready_by_after(now)
        rows = await service.dispatches(dev.id, start=now - SLOT, end=window_end)
        evs[dev.id] = {
            "charge_kwh": r(plan.ev_charge_kwh.get(dev.id, (0.0,) * plan.n)),
            "soc_kwh": r(plan.ev_soc_kwh[dev.id]) if dev.id in plan.ev_soc_kwh else None,
            "capacity_kwh": capacity,
            "target_soc_pct": dev.preferences.target_soc_pct,
            "ready_by": ts(ready_by),
            "ready_by_local": _local(ready_by),
            "dispatches": [d.to_json() for d in rows if d.status != "cancelled"],
        }
    soc = plan.battery_soc_kwh
    return {
        **doc,
        "status": plan.status,
        "slot_minutes": plan.slot_minutes,
        "starts": [ts(t) for t in starts],
        "local": [_local(t) for t in starts],
        "import_price_p": r(plan.import_price_p),
        "export_price_p": r(plan.export_price_p),
        "grid_import_kwh": r(plan.grid_import_kwh),
        "grid_export_kwh": r(plan.grid_export_kwh),
        "battery_charge_kwh": r(plan.battery_charge_kwh),
        "battery_discharge_kwh": r(plan.battery_discharge_kwh),
        "battery_soc_kwh": None if soc is None else r(soc),
        "battery_capacity_kwh": round(plan.battery_capacity_kwh, 3),
        "reserve_pct": site.config.reserve_pct,
        "evs": evs,
    }


async def energy_doc(service: Service, site: SiteRuntime, now: datetime) -> dict[str, Any]:
    """Today's and yesterday's (UK local days) energy and cost by register and band, from the
    latest version of each rated slot."""
    today = now.astimezone(LONDON).date()
    days = []
    for day in (today, today - timedelta(days=1)):
        start, end = day_bounds(day)
        rows = await service.storage.latest_rated(site.config.meter, start, end)
        bands = [
            {"register": reg, "band": band, "kwh": str(kwh), "cost_p": str(cost)}
            for (reg, band), (kwh, cost) in by_band(rows).items()
        ]
        total = sum((r.cost_p for r in rows), Decimal(0))
        days.append({"date": day.isoformat(), "slots": len(rows), "bands": bands,
                     "total_cost_p": str(total)})  # fmt: skip
    return {"site": site.config.id, "meter": site.config.meter, "days": days}


def routes(service_key: web.AppKey[Service]) -> list[web.RouteDef]:
    def _site(request: web.Request) -> SiteRuntime:
        return request.app[service_key].site(request.match_info["site"], _account(request))

    async def list_sites(request: web.Request) -> web.Response:
        account = _account(request)
        service = request.app[service_key]
        now = service.clock.now()
        sites = [
            await site_summary(service, s, now)
            for s in service.sites.values()
            if account is None or s.config.account == account
        ]
        role = request[TOKEN].role
        return web.json_response({"now": ts(now), "role": role, "sites": sites})

    async def get_site(request: web.Request) -> web.Response:
        site = _site(request)
        service = request.app[service_key]
        now = service.clock.now()
        return web.json_response({
            "now": ts(now),
            "now_local": _local(now),
            "site": await site_summary(service, site, now),
            "tariff_now": service.tariff_now.get(site.config.id),
            "devices": [d.view(now) for d in site.devices.values()],
        })  # fmt: skip

    async def get_plan(request: web.Request) -> web.Response:
        site = _site(request)
        service = request.app[service_key]
        return web.json_response(await plan_doc(service, site, service.clock.now()))

    async def get_energy(request: web.Request) -> web.Response:
        site = _site(request)
        service = request.app[service_key]
        return web.json_response(await energy_doc(service, site, service.clock.now()))

    return [
        web.get("/api/v1/sites", list_sites),
        web.get("/api/v1/sites/{site}", get_site),
        web.get("/api/v1/sites/{site}/plan", get_plan),
        web.get("/api/v1/sites/{site}/energy", get_energy),
    ]
