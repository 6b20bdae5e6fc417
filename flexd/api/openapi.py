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


def _web_paths(v1: str) -> dict[str, Any]:
    """The web page (public; it signs in itself) and the site routes it reads."""
    site = [{"name": "site", "in": "path", "required": True, "schema": {"type": "string"}}]
    asset = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    err = "401 403 404"
    return {
        "/": {"get": {**_op("the web page (HTML)", "200"), "security": []}},
        "/web/{name}": {
            "get": {**_op("the page's script and style", "200", asset, errors="404"),
                    "security": []}
        },
        f"{v1}/sites": {
            "get": _op("sites the token may see, with device health, plan age, failed cycles",
                       "200", errors="401 403")
        },
        f"{v1}/sites/{{site}}": {
            "get": _op("the site's health, band and prices now, and its devices", "200", site,
                       errors=err)
        },
        f"{v1}/sites/{{site}}/plan": {
            "get": _op("the next 24 h of the plan, each half-hour with its UK local time",
                       "200", site, errors=err)
        },
        f"{v1}/sites/{{site}}/energy": {
            "get": _op("today's and yesterday's energy and cost by band (rated slots)", "200",
                       site, errors=err)
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
        },
    }
