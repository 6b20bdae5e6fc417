"""The OpenAPI 3.1 document, written as data; a test checks it against the real routes."""

from __future__ import annotations

from typing import Any

_ERR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
_METER = [{"name": "meter", "in": "path", "required": True, "schema": {"type": "string"}}]


def _op(
    summary: str, ok: str, params: list[dict[str, Any]] | None = None, **codes: str
) -> dict[str, Any]:
    responses: dict[str, Any] = {ok: {"description": summary}}
    for code in ("401", "403", "404", "409", "413", "422"):
        if code in codes.get("errors", ""):
            responses[code] = _ERR
    doc: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        doc["parameters"] = params
    return doc


def _q(name: str, desc: str, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if fmt is not None:
        schema["format"] = fmt
    return {"name": name, "in": "query", "description": desc, "schema": schema}


def _obj(required: dict[str, Any]) -> dict[str, Any]:
    """An object schema whose listed properties are all required (others may follow)."""
    return {"type": "object", "required": list(required), "properties": required}


_STR, _NUM, _INT = {"type": "string"}, {"type": "number"}, {"type": "integer"}
_NSTR, _NNUM = {"type": ["string", "null"]}, {"type": ["number", "null"]}
_LOCAL = _obj({"time": _STR, "date": _STR, "offset": _STR})
_SUMMARY = _obj({
    "id": _STR, "account": _STR, "tariff": _STR, "devices": _INT, "online": _INT, "stale": _INT,
    "offline": _INT, "unknown": _INT, "stale_devices": {"type": "array", "items": _STR},
    "offline_devices": {"type": "array", "items": _STR}, "plan_made_at": _NSTR,
    "plan_age_s": _NNUM, "failed_cycles": _INT,
})  # fmt: skip
_SERIES = {"type": "array", "items": _NUM}


def _json_op(summary: str, schema: dict[str, Any], params: list[dict[str, Any]], errors: str
             ) -> dict[str, Any]:  # fmt: skip
    doc = _op(summary, "200", params, errors=errors)
    doc["responses"]["200"]["content"] = {"application/json": {"schema": schema}}
    return doc


def _web_paths(v1: str) -> dict[str, Any]:
    """The web page (public; it signs in itself) and the site routes it reads, with the shapes
    the page relies on (the schemathesis test checks every answer against them)."""
    site = [{"name": "site", "in": "path", "required": True, "schema": {"type": "string"}}]
    asset = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    err = "401 403 404"
    sites = _obj({"now": _STR, "role": _STR, "sites": {"type": "array", "items": _SUMMARY}})
    now = _obj({"now": _STR, "now_local": _LOCAL, "site": _SUMMARY,
                "tariff_now": {"type": ["object", "null"]},
                "devices": {"type": "array", "items": {"type": "object"}}})  # fmt: skip
    plan = _obj({"site": _STR, "now": _STR, "plan_made_at": _NSTR, "slot_minutes": _INT,
                 "starts": {"type": "array", "items": _STR},
                 "local": {"type": "array", "items": _LOCAL},
                 "evs": {"type": "object"}})  # fmt: skip
    plan["properties"] |= {k: _SERIES for k in (
        "import_price_p", "export_price_p", "grid_import_kwh", "grid_export_kwh",
        "battery_charge_kwh", "battery_discharge_kwh")}  # fmt: skip
    band = _obj({"register": _STR, "band": _STR, "kwh": _STR, "cost_p": _STR})
    day = _obj({"date": _STR, "slots": _INT, "bands": {"type": "array", "items": band},
                "total_cost_p": _STR})  # fmt: skip
    energy = _obj({"site": _STR, "meter": _STR, "days": {"type": "array", "items": day}})
    return {
        "/": {"get": {**_op("the web page (HTML)", "200"), "security": []}},
        "/web/{name}": {
            "get": {**_op("the page's script and style", "200", asset, errors="404"),
                    "security": []}
        },
        f"{v1}/sites": {
            "get": _json_op("sites the token may see, with device health, plan age, failed "
                            "cycles", sites, [], "401 403")
        },
        f"{v1}/sites/{{site}}": {
            "get": _json_op("the site's health, band and prices now, and its devices", now,
                            site, err)
        },
        f"{v1}/sites/{{site}}/plan": {
            "get": _json_op("the next 24 h of the plan, each half-hour with its UK local time",
                            plan, site, err)
        },
        f"{v1}/sites/{{site}}/energy": {
            "get": _json_op("today's and yesterday's energy and cost by band (rated slots)",
                            energy, site, err)
        },
    }


def document() -> dict[str, Any]:
    v1 = "/api/v1"
    dev_err = "401 403 404"
    return {
        "openapi": "3.1.0",
        "info": {"title": "flexd", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {
                        "error": {"type": "string"},
                        "detail": {"type": "string"},
                        "field": {"type": ["string", "null"]},
                    },
                }
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {**_op("alive", "200"), "security": []}},
            "/readyz": {
                "get": {
                    **_op("database open, devices polled, prices known; 503 if not", "200"),
                    "security": [],
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready yet (the body says what is missing)"},
                    },
                }
            },
            "/metrics": {"get": {**_op("Prometheus text", "200"), "security": []}},
            f"{v1}/openapi.json": {"get": {**_op("this document", "200"), "security": []}},
            **_web_paths(v1),
            f"{v1}/devices": {"get": _op("devices the token may see", "200", errors="401 403")},
            f"{v1}/devices/{{id}}": {
                "get": _op("state, age, health, SoC source", "200", _ID, errors=dev_err)
            },
            f"{v1}/devices/{{id}}/bump-charge": {
                "post": _op(
                    "start a BOOST (body: target_soc_pct or duration_minutes; header Idempotency-Key)",  # noqa: E501
                    "202",
                    _ID,
                    errors=dev_err + " 409 413 422",
                ),
                "delete": _op("end the running BOOST", "200", _ID, errors=dev_err + " 409"),
            },
            f"{v1}/devices/{{id}}/preferences": {
                "get": _op("ready-by times and SoC targets", "200", _ID, errors=dev_err + " 409"),
                "put": _op(
                    "change preferences (validated)", "200", _ID, errors=dev_err + " 409 413 422"
                ),
            },
            f"{v1}/devices/{{id}}/dispatches": {
                "get": _op(
                    "dispatches (start, end, type SMART/BOOST, energy)",
                    "200",
                    [
                        *_ID,
                        _q("status", "planned|completed"),
                        _q("from", "ISO instant", "date-time"),
                        _q("to", "ISO instant", "date-time"),
                    ],
                    errors=dev_err + " 422",
                ),
            },
            f"{v1}/meters/{{meter}}/readings": {
                "post": _op(
                    'half-hourly readings {"readings": [{start, kwh, register}]}; idempotent upsert',  # noqa: E501
                    "200",
                    _METER,
                    errors="401 403 404 413 422",
                ),
            },
            f"{v1}/meters/{{meter}}/rated-slots": {
                "get": _op(
                    "rated slots as JSON, or the rated.csv contract with Accept: text/csv",
                    "200",
                    [
                        *_METER,
                        _q("from", "ISO instant", "date-time"),
                        _q("to", "ISO instant", "date-time"),
                        _q("version", "latest|all"),
                    ],
                    errors="401 403 404 422",
                ),
            },
            **_billing_paths(v1),
            f"{v1}/fleet": {
                "get": _op(
                    "the fleet (admin): instances (id, started, last_heartbeat, stopped, "
                    "sites_owned) and sites (id, owner, epoch, lease_expires); 404 alone",
                    "200", errors="401 403 404",
                ),
            },
        },
    }


def _billing_paths(v1: str) -> dict[str, Any]:
    """Issue 17's bills and Direct Debit check (billing and admin tokens)."""
    bill_id = [*_METER, *_ID]
    account = [{"name": "account", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        f"{v1}/meters/{{meter}}/bills": {
            "post": _op(
                "make and store a bill from the latest rated slots (body: from, to, bill_date, "
                "account_type, customer_caused, balance_p); the bill.json shape with its id",
                "201", _METER, errors="401 403 404 413 422",
            ),
            "get": _op("the meter's bills", "200", _METER, errors="401 403 404"),
        },
        f"{v1}/meters/{{meter}}/bills/{{id}}": {
            "get": _op("one bill in the bill.json shape", "200", bill_id, errors="401 403 404"),
        },
        f"{v1}/accounts/{{account}}/direct-debit": {
            "get": _op(
                "the Direct Debit check (the dd.json shape)", "200",
                [*account, _q("today", "local date", "date"), _q("balance_p", "pence, credit +"),
                 _q("payment_p", "pence a month"), _q("last_change", "date", "date"),
                 _q("supply_start", "date", "date"), _q("last_reading", "date", "date"),
                 _q("target_weeks", "weeks of credit on 1 April"), _q("meter", "one of several")],
                errors="401 403 404 422",
            ),
        },
    }
