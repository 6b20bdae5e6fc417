"""A simulator of the Octopus public REST unit-rates API, serving real Agile day-ahead curves.

Prices come from ``simulator/data/agile_2021_01.csv`` (28 real days), mapped onto any date by
local wall-clock half-hour, so every simulated day has a realistic shape. Like the real feed,
next-day prices appear only after the publish time (16:00 local by default, optionally late),
results run newest first, and long ranges are paged through ``next``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from importlib import resources

from aiohttp import web

from core.clock import Clock, SystemClock
from core.timegrid import LONDON

HALF_HOUR = timedelta(minutes=30)
_EPOCH = date(2021, 1, 4)


def load_curves() -> tuple[list[Decimal], list[Decimal]]:
    """The 28-day import and export series, 48 slots a day (January: local time is UTC)."""
    text = resources.files("simulator").joinpath("data/agile_2021_01.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    return [Decimal(r["import_p"]) for r in rows], [Decimal(r["export_p"]) for r in rows]


@dataclass
class OctopusPriceSimulator:
    clock: Clock
    publish_local: time = time(16, 0)
    late_minutes: float = 0.0
    down: bool = False  # answer 503 to everything
    page_size_max: int = 1500
    requests: int = 0
    _imports: list[Decimal] = field(default_factory=list)
    _exports: list[Decimal] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._imports, self._exports = load_curves()

    def price(self, start: datetime, export: bool) -> Decimal:
        local = start.astimezone(LONDON)
        day = (local.date() - _EPOCH).days % 28
        k = local.hour * 2 + local.minute // 30
        series = self._exports if export else self._imports
        return series[day * 48 + k]

    def published_until(self) -> datetime:
        """Prices run to the end of today, or of tomorrow once today's publication is out."""
        local = self.clock.now().astimezone(LONDON)
        publish = datetime.combine(local.date(), self.publish_local, tzinfo=LONDON) + timedelta(
            minutes=self.late_minutes
        )
        days = 2 if local >= publish else 1
        end_local = datetime.combine(local.date() + timedelta(days=days), time(0), tzinfo=LONDON)
        return end_local.astimezone(UTC)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.down:
            return web.json_response({"detail": "service unavailable"}, status=503)
        export = "OUTGOING" in request.match_info["tariff"].upper()
        q = request.query
        try:
            end_pub = self.published_until()
            start = _q_instant(q.get("period_from")) or (end_pub - timedelta(days=2))
            end = min(_q_instant(q.get("period_to")) or end_pub, end_pub)
            page_size = min(int(q.get("page_size", "100")), self.page_size_max)
            page = int(q.get("page", "1"))
        except ValueError as exc:
            return web.json_response({"detail": str(exc)}, status=400)
        if page_size < 1 or page < 1:
            return web.json_response({"detail": "page and page_size must be >= 1"}, status=400)
        t = start.replace(minute=30 if start.minute >= 30 else 0, second=0, microsecond=0)
        slots = []
        while t < end:
            slots.append(t)
            t += HALF_HOUR
        slots.reverse()  # newest first, like the real feed
        chunk = slots[(page - 1) * page_size : page * page_size]
        nxt = None
        if page * page_size < len(slots):
            nxt = str(request.url.update_query({"page": str(page + 1)}))
        results = []
        for s in chunk:
            inc = self.price(s, export)
            results.append(
                {
                    "value_exc_vat": float(round(inc / Decimal("1.05"), 4)),
                    "value_inc_vat": float(inc),
                    "valid_from": s.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "valid_to": (s + HALF_HOUR).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "payment_method": None,
                }
            )
        body = {"count": len(slots), "next": nxt, "previous": None, "results": results}
        return web.json_response(body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(
            "/v1/products/{product}/electricity-tariffs/{tariff}/standard-unit-rates/",
            self.handle,
        )
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        return runner, bound_port(runner)


def bound_port(runner: web.AppRunner) -> int:
    """The port an AppRunner's first site listens on (for port 0)."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("runner has no bound address")


def _q_instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"{value!r} has no offset")
    return t


async def run_cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator octopus-api")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    sim = OctopusPriceSimulator(SystemClock())
    runner, port = await sim.start(port=args.port)
    print(f"octopus-api simulator on http://127.0.0.1:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
