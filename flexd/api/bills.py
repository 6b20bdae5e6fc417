"""The billing role's bill and Direct Debit routes (issue 17): bills made from the stored
latest rated versions, listed and read back in the bill.json shape; an account's DD check."""

from __future__ import annotations

import json

from aiohttp import web

from flexd.api.auth import TOKEN
from flexd.api.billing import may_bill
from flexd.control.preferences import InputError
from flexd.service import NotFound, Service


def routes(service_key: web.AppKey[Service]) -> list[web.RouteDef]:
    def _role(request: web.Request) -> Service:
        if not may_bill(request[TOKEN]):
            raise web.HTTPForbidden(text="only billing or admin tokens may use bills")
        return request.app[service_key]

    def _meter(request: web.Request) -> tuple[Service, str]:
        service = _role(request)
        meter = request.match_info["meter"]
        service.meter_account(meter)  # 404 for an unknown meter
        return service, meter

    async def create_bill(request: web.Request) -> web.Response:
        service, meter = _meter(request)
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError) as e:
            raise InputError("body", "not valid JSON (or nested too deep)") from e
        bill_id, doc = await service.bills.create(meter, body)
        location = f"/api/v1/meters/{meter}/bills/{bill_id}"
        return web.json_response(doc, status=201, headers={"Location": location})

    async def list_bills(request: web.Request) -> web.Response:
        service, meter = _meter(request)
        return web.json_response({"meter": meter, "bills": await service.bills.list(meter)})

    async def get_bill(request: web.Request) -> web.Response:
        service, meter = _meter(request)
        doc = await service.bills.get(meter, request.match_info["id"])
        if doc is None:
            raise NotFound(f"bill {request.match_info['id']} of meter {meter}")
        return web.json_response(doc)

    async def direct_debit(request: web.Request) -> web.Response:
        service = _role(request)
        account = request.match_info["account"]
        site = service.bills.account_site(account, request.query.get("meter"))
        if site is None:
            raise NotFound(f"account {account}")
        return web.json_response(await service.bills.direct_debit(site, request.query))

    return [
        web.post("/api/v1/meters/{meter}/bills", create_bill),
        web.get("/api/v1/meters/{meter}/bills", list_bills),
        web.get("/api/v1/meters/{meter}/bills/{id}", get_bill),
        web.get("/api/v1/accounts/{account}/direct-debit", direct_debit),
    ]
