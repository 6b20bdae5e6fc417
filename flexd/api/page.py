"""The web page: ``GET /`` and its script and style, served from the package (no CDN, no build
step). The page signs in with a bearer token it keeps in session storage and reads the JSON API.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web

ASSETS = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "app.css": "text/css",
}
# The page loads only its own files, and talks only to its own origin.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def is_public(path: str) -> bool:
    return path == "/" or path.startswith("/web/")


@cache
def _asset(name: str) -> bytes:
    return resources.files("flexd.api").joinpath("static", name).read_bytes()


def _serve(name: str) -> web.Response:
    return web.Response(body=_asset(name), content_type=ASSETS[name], charset="utf-8",
                        headers=HEADERS)  # fmt: skip


async def index(request: web.Request) -> web.Response:
    return _serve("index.html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound(text=f"no such file: {name}")
    return _serve(name)


def routes() -> list[web.RouteDef]:
    return [web.get("/", index), web.get("/web/{name}", asset)]
