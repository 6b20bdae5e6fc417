"""aiohttp application: routes under /api/v1 plus /healthz, /readyz and /metrics."""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from flexd.api import billing, bills, fleet, page, sites
from flexd.api.auth import TOKEN, authenticate, may_use_device
from flexd.api.errors import error
from flexd.api.openapi import document
from flexd.config import ApiConfig, TokenConfig
from flexd.control.preferences import InputError
from flexd.obs.metrics import IDENTIFYING
from flexd.service import Conflict, NotFound, Service
from rating.io import parse_instant
from rating.model import RatingInputError

SERVICE: web.AppKey[Service] = web.AppKey("service", Service)
CONFIG: web.AppKey[ApiConfig] = web.AppKey("config", ApiConfig)
log = structlog.get_logger("flexd.api")
PUBLIC = {"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def errors_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    service = request.app[SERVICE]
    try:
        resp = await handler(request)
    except InputError as e:
        resp = error(422, "invalid", e.reason, e.field)
    except NotFound as e:
        resp = error(404, "not-found", str(e))
    except Conflict as e:  # 409; 503 (Unavailable) while a fleet site changes owner
        resp = error(getattr(e, "status", 409), e.code, e.detail)
        if resp.status == 503:
            resp.headers["Retry-After"] = "5"
    except web.HTTPRequestEntityTooLarge:
        resp = error(413, "too-large", "request body too large")
    except web.HTTPException as e:
        resp = error(e.status, e.reason.lower().replace(" ", "-"), e.text or e.reason)
        if "Allow" in e.headers:  # a 405 says which methods the route has (RFC 9110)
            resp.headers["Allow"] = e.headers["Allow"]
    except Exception as e:  # a bug: answer 500 as JSON, log it, and count it like any answer
        log.exception("api_internal_error", route=_route_name(request), error=str(e))
        resp = error(500, "internal", "internal error")
    service.metrics.api_requests.inc(route=_route_name(request), status=str(resp.status))
    return resp


@web.middleware
async def auth_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC or page.is_public(request.path):
        return await handler(request)
    token = authenticate(request.headers.get("Authorization"), request.app[CONFIG].tokens)
    if token is None:
        return error(401, "unauthorized", "a valid bearer token is required")
    request[TOKEN] = token
    return await handler(request)


def _token(request: web.Request) -> TokenConfig:
    return request[TOKEN]


def _device_id(request: web.Request) -> str:
    """The path's device id, after checking the token may touch it (403 otherwise)."""
    device_id = request.match_info["id"]
    account = request.app[SERVICE].account_of(device_id)
    token = _token(request)
    if not may_use_device(token, account):
        if token.role == "app":
            # Another account's device is "not found", exactly as an unknown one: an app token
            # must not learn which ids exist.
            raise NotFound(f"device {device_id}")
        raise web.HTTPForbidden(text="this token may not use that device")  # the role never may
    return device_id


async def _json(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return json.loads(await request.read())
    except ValueError as e:
        raise InputError("body", f"not valid JSON: {e}") from e


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"alive": True})


async def readyz(request: web.Request) -> web.Response:
    doc = await request.app[SERVICE].readiness()
    return web.json_response(doc, status=200 if doc["ready"] else 503)


async def metrics(request: web.Request) -> web.Response:
    """Open to scrapers, but without meter numbers, device or site ids (summed away) unless the
    request carries an admin token."""
    token = authenticate(request.headers.get("Authorization"), request.app[CONFIG].tokens)
    redact = frozenset() if token is not None and token.role == "admin" else IDENTIFYING
    text = request.app[SERVICE].metrics.render(redact)
    return web.Response(text=text, content_type="text/plain")


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


async def list_devices(request: web.Request) -> web.Response:
    token = _token(request)
    if token.role == "billing":
        raise web.HTTPForbidden(text="billing tokens may not read devices")
    account = None if token.role == "admin" else token.account
    return web.json_response({"devices": request.app[SERVICE].devices(account)})


async def get_device(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SERVICE].load_device_view(_device_id(request)))


async def bump(request: web.Request) -> web.Response:
    device_id = _device_id(request)
    body = await _json(request)
    if not isinstance(body, dict):
        raise InputError("body", "must be a JSON object")
    target = body.get("target_soc_pct")
    duration = body.get("duration_minutes")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float)):
        raise InputError("target_soc_pct", "must be a number")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)):
        raise InputError("duration_minutes", "must be an integer")
    result = await request.app[SERVICE].bump_charge(
        device_id,
        target_soc_pct=target,
        duration_minutes=duration,
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return web.json_response(result.body, status=result.status)


async def cancel_bump(request: web.Request) -> web.Response:
    row = await request.app[SERVICE].cancel_bump(_device_id(request))
    return web.json_response(row.to_json())


async def get_prefs(request: web.Request) -> web.Response:
    prefs = await request.app[SERVICE].load_preferences(_device_id(request))
    return web.json_response(prefs.to_json())


async def put_prefs(request: web.Request) -> web.Response:
    device_id = _device_id(request)
    prefs = await request.app[SERVICE].set_preferences(device_id, await _json(request))
    return web.json_response(prefs.to_json())


async def list_dispatches(request: web.Request) -> web.Response:
    device_id = _device_id(request)
    q = request.query
    start = _query_instant(q.get("from"), "from")
    end = _query_instant(q.get("to"), "to")
    rows = await request.app[SERVICE].dispatches(device_id, q.get("status"), start, end)
    return web.json_response({"dispatches": [r.to_json() for r in rows]})


def _query_instant(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_instant(text, name)
    except RatingInputError as e:
        raise InputError(name, e.reason) from None


def build_app(service: Service, config: ApiConfig) -> web.Application:
    app = web.Application(middlewares=[errors_mw, auth_mw], client_max_size=config.max_body_bytes)
    app[SERVICE] = service
    app[CONFIG] = config
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    v1 = "/api/v1"
    app.router.add_get(f"{v1}/openapi.json", openapi)
    app.router.add_get(f"{v1}/devices", list_devices)
    app.router.add_get(f"{v1}/devices/{{id}}", get_device)
    app.router.add_post(f"{v1}/devices/{{id}}/bump-charge", bump)
    app.router.add_delete(f"{v1}/devices/{{id}}/bump-charge", cancel_bump)
    app.router.add_get(f"{v1}/devices/{{id}}/preferences", get_prefs)
    app.router.add_put(f"{v1}/devices/{{id}}/preferences", put_prefs)
    app.router.add_get(f"{v1}/devices/{{id}}/dispatches", list_dispatches)
    app.router.add_routes(billing.routes(SERVICE))
    app.router.add_routes(bills.routes(SERVICE))
    app.router.add_routes(sites.routes(SERVICE))
    app.router.add_routes(fleet.routes(SERVICE))
    app.router.add_routes(page.routes())
    return app


async def start_api(service: Service, config: ApiConfig) -> web.AppRunner:
    """Serve on config.host:config.port (0 picks a free port: see ``bound_port``)."""
    runner = web.AppRunner(build_app(service, config))
    await runner.setup()
    ctx = None
    if config.tls_cert is not None and config.tls_key is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(config.tls_cert, config.tls_key)
    site = web.TCPSite(runner, config.host, config.port, ssl_context=ctx)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    port: int = runner.addresses[0][1]
    return port
