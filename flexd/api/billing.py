"""Billing routes: readings in (whole batch validated first), rated slots out as JSON or CSV."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from flexd.api.auth import TOKEN
from flexd.config import TokenConfig
from flexd.control.preferences import InputError
from flexd.service import Service
from flexd.storage import RatedRow, ReadingRow
from rating.io import ReadingLimits, parse_instant, parse_reading
from rating.model import RatingInputError

CSV_HEADER = "meter,start,settlement_date,settlement_period,register,kwh,band,unit_rate_p,cost_p"


def may_bill(token: TokenConfig) -> bool:
    return token.role in ("billing", "admin")


def parse_batch(
    meter: str, body: Any, limits: ReadingLimits | None = None
) -> tuple[list[ReadingRow], list[dict[str, Any]]]:
    """Every row validated with ``flexd rate``'s rules and ``limits``; returns (rows,
    problems), each problem naming the row (``readings[i].field``) and the reason."""
    if not isinstance(body, dict) or not isinstance(body.get("readings"), list):
        raise InputError("readings", 'body must be {"readings": [...]}')
    rows: list[ReadingRow] = []
    problems: list[dict[str, Any]] = []
    seen: dict[tuple[float, str], int] = {}
    for i, item in enumerate(body["readings"]):
        field = f"readings[{i}]"
        if not isinstance(item, dict):
            problems.append({"field": field, "reason": "must be an object"})
            continue
        kwh = item.get("kwh")
        start = item.get("start")
        if isinstance(kwh, bool) or not isinstance(kwh, str | int | float):
            problems.append({"field": f"{field}.kwh", "reason": "must be a number or string"})
            continue
        if not isinstance(start, str):
            problems.append({"field": f"{field}.start", "reason": "must be an ISO instant"})
            continue
        register = item.get("register")
        try:
            r = parse_reading(
                meter, start, str(kwh), register if register is None else str(register),
                limits=limits,
            )
        except RatingInputError as e:
            problems.append({"field": f"{field}.{e.field}", "reason": e.reason})
            continue
        key = (r.start.timestamp(), r.register)
        if key in seen:
            problems.append(
                {"field": field, "reason": f"duplicate (start, register) of readings[{seen[key]}]"}
            )
            continue
        seen[key] = i
        rows.append(ReadingRow(meter, r.start, r.register, r.kwh, source="api"))
    return rows, problems


def _instant(request: web.Request, name: str) -> datetime:
    text = request.query.get(name)
    if text is None:
        raise InputError(name, "is required")
    try:
        return parse_instant(text, name)
    except RatingInputError as e:
        raise InputError(name, e.reason) from None


def _csv_line(row: RatedRow, with_version: bool) -> str:
    cells = [
        row.meter, row.start.strftime("%Y-%m-%dT%H:%M:%SZ"), row.settlement_date,
        str(row.settlement_period), row.register, str(row.kwh), row.band, str(row.unit_rate_p),
        str(row.cost_p),
    ]  # fmt: skip
    if with_version:
        cells.append(str(row.version))
    return ",".join(cells) + "\n"


def routes(service_key: web.AppKey[Service]) -> list[web.RouteDef]:
    def _check(request: web.Request) -> str:
        if not may_bill(request[TOKEN]):
            raise web.HTTPForbidden(text="only billing or admin tokens may use meters")
        meter = request.match_info["meter"]
        request.app[service_key].meter_account(meter)  # 404 for an unknown meter
        return meter

    async def post_readings(request: web.Request) -> web.Response:
        meter = _check(request)
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError) as e:
            raise InputError("body", "not valid JSON (or nested too deep)") from e
        rows, problems = parse_batch(meter, body, request.app[service_key].reading_limits())
        if problems:
            doc = {
                "error": "invalid",
                "detail": f"{len(problems)} bad readings; none stored",
                "field": problems[0]["field"],
                "problems": problems,
            }
            return web.json_response(doc, status=422)
        changed = await request.app[service_key].upsert_readings(meter, rows)
        return web.json_response({"received": len(rows), "changed": changed})

    async def rated_slots(request: web.Request) -> web.StreamResponse:
        meter = _check(request)
        start, end = _instant(request, "from"), _instant(request, "to")
        if end <= start:
            raise InputError("to", "must be after from")
        version = request.query.get("version", "latest")
        if version not in ("latest", "all"):
            raise InputError("version", "must be latest or all")
        all_versions = version == "all"
        rows = request.app[service_key].rated_slots(meter, start, end, all_versions)
        if "text/csv" in request.headers.get("Accept", ""):
            resp = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8"})
            await resp.prepare(request)
            await resp.write((CSV_HEADER + (",version" if all_versions else "") + "\n").encode())
            async for row in rows:
                await resp.write(_csv_line(row, all_versions).encode())
            await resp.write_eof()
            return resp

        out = []
        async for row in rows:
            doc = row.to_json()
            if not all_versions:
                doc.pop("version")
            out.append(doc)
        return web.json_response({"meter": meter, "slots": out})

    return [
        web.post("/api/v1/meters/{meter}/readings", post_readings),
        web.get("/api/v1/meters/{meter}/rated-slots", rated_slots),
    ]
