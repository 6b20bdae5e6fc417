"""Every failure leaves the API as JSON ``{"error", "detail", "field"}`` with a 4xx status."""

from __future__ import annotations

from aiohttp import web


def error(status: int, code: str, detail: str, field: str | None = None) -> web.Response:
    return web.json_response({"error": code, "detail": detail, "field": field}, status=status)
