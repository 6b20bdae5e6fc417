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
