"""``GET /api/v1/fleet`` (admin): every instance with its heartbeat and sites owned, and every
site with its owner, epoch and lease expiry, read from the database (any instance answers the
same). On a single instance (no [fleet]) it answers 404 with a JSON body."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from flexd.api.auth import TOKEN
from flexd.fleet.leases import fleet_view
from flexd.service import NotFound, Service
from flexd.storage import ts


def _iso(t: datetime | None) -> str | None:
    return None if t is None else ts(t)


def routes(service_key: web.AppKey[Service]) -> list[web.RouteDef]:
    async def fleet(request: web.Request) -> web.Response:
        if request[TOKEN].role != "admin":
            raise web.HTTPForbidden(text="only admin tokens may read the fleet")
        service = request.app[service_key]
        if not service.config.fleet.enabled:
            raise NotFound("fleet (this instance runs alone: [fleet] enabled = false)")
        instances, sites = await fleet_view(service.storage)
        return web.json_response({
            "instances": [
                {"id": i.id, "started": _iso(i.started), "last_heartbeat": _iso(i.last_heartbeat),
                 "stopped": _iso(i.stopped), "sites_owned": i.sites_owned}
                for i in instances
            ],
            "sites": [
                {"id": s.id, "owner": s.owner, "epoch": s.epoch,
                 "lease_expires": _iso(s.lease_until)}
                for s in sites
            ],
        })  # fmt: skip

    return [web.get("/api/v1/fleet", fleet)]
