"""The price feed: Octopus public REST unit rates, fetched over HTTP or read from files, into
the one :class:`rating.prices.PriceBook`. The shape is parsed by :mod:`rating.octopus` only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from core.clock import Clock
from core.timegrid import half_hour_start
from devices.retry import Backoff
from flexd.config import PriceConfig
from rating import octopus
from rating.io import read_unit_rates
from rating.model import RatingInputError
from rating.octopus import UnitRate
from rating.prices import PriceBook

BACKOFF = Backoff(base_s=0.5, cap_s=30.0, attempts=4)


class PriceFeedError(Exception):
    """The feed answered with something unusable, or could not be reached after retries."""


def parse_unit_rates(
    doc: Any, window: tuple[datetime, datetime] | None = None,
    payment_method: str | None = octopus.DIRECT_DEBIT,
) -> list[UnitRate]:  # fmt: skip
    """:func:`rating.octopus.parse_unit_rates`, its refusal as a feed error."""
    try:
        return octopus.parse_unit_rates(doc, window=window, payment_method=payment_method)
    except RatingInputError as exc:
        raise PriceFeedError(str(exc)) from None


def read_price_file(path: Path) -> list[UnitRate]:
    """:func:`rating.io.read_unit_rates`, its refusal as a feed error."""
    try:
        return read_unit_rates(path)
    except RatingInputError as exc:
        raise PriceFeedError(str(exc)) from None


def unit_rates_url(base_url: str, product: str, tariff: str) -> str:
    return (
        f"{base_url.rstrip('/')}/v1/products/{product}/electricity-tariffs/{tariff}"
        "/standard-unit-rates/"
    )


async def fetch_unit_rates(
    session: aiohttp.ClientSession,
    base_url: str,
    product: str,
    tariff: str,
    period_from: datetime,
    period_to: datetime,
    *,
    attempts: int = BACKOFF.attempts,
    sleep: Callable[[float], Any] = asyncio.sleep,
    timeout_s: float = 10.0,
    payment_method: str | None = octopus.DIRECT_DEBIT,
) -> list[UnitRate]:
    """Fetch every page between the two instants, with jittered retries per page."""
    url: str | None = unit_rates_url(base_url, product, tariff)
    params: dict[str, str] | None = {
        "period_from": period_from.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "period_to": period_to.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "page_size": "1500",
    }
    out: list[UnitRate] = []
    pages = 0
    while url is not None:
        pages += 1
        if pages > 100:
            raise PriceFeedError("more than 100 pages: refusing to follow `next` further")
        doc = await _get_json(session, url, params, attempts, sleep, timeout_s)
        out.extend(parse_unit_rates(doc, (period_from, period_to), payment_method))
        nxt = doc.get("next")
        url = nxt if isinstance(nxt, str) and nxt else None
        params = None  # `next` carries the query
    out.sort(key=lambda s: s.start)
    return out


async def _get_json(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str] | None,
    attempts: int,
    sleep: Callable[[float], Any],
    timeout_s: float,
) -> Any:
    last = ""
    for attempt in range(attempts):
        try:
            async with session.get(
                url, params=params, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as resp:
                if resp.status == 404:
                    raise PriceFeedError(f"{url}: 404 not found")
                if resp.status >= 500 or resp.status == 429:
                    last = f"HTTP {resp.status}"
                elif resp.status != 200:
                    raise PriceFeedError(f"{url}: HTTP {resp.status}")
                else:
                    try:
                        return await resp.json(content_type=None)
                    except (json.JSONDecodeError, aiohttp.ContentTypeError):
                        raise PriceFeedError(f"{url}: body is not JSON") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            last = type(exc).__name__
        if attempt < attempts - 1:
            await sleep(BACKOFF.delay(attempt))
    raise PriceFeedError(f"{url}: unreachable after {attempts} attempts ({last})")


class PriceFeed:
    """Fetches the configured prices into the book: from the API (or the in-process simulated
    API at ``base_url``) for yesterday to two days ahead, or from the configured files."""

    def __init__(
        self, config: PriceConfig, clock: Clock, book: PriceBook, base_url: str | None = None
    ) -> None:
        self.config = config
        self.clock = clock
        self.book = book
        self.base_url = base_url or config.base_url

    async def fetch(self) -> int:
        """Fetch once; returns how many half-hours were new or changed."""
        cfg = self.config
        if cfg.source == "file":
            new = 0
            if cfg.import_file:
                new += self.book.add("import", read_price_file(cfg.import_file))
            if cfg.export_file:
                new += self.book.add("export", read_price_file(cfg.export_file))
            return new
        start = half_hour_start(self.clock.now()) - timedelta(hours=24)
        end = start + timedelta(days=3)
        new = 0
        async with aiohttp.ClientSession() as session:
            for direction, tariff in (("import", cfg.import_tariff), ("export", cfg.export_tariff)):
                if tariff is None:
                    continue
                rates = await fetch_unit_rates(
                    session, self.base_url, cfg.product, tariff, start, end,
                    sleep=self.clock.sleep, payment_method=cfg.payment_method,
                )  # fmt: skip
                new += self.book.add(direction, rates)
        return new
