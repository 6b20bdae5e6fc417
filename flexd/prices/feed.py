"""The price feed: Octopus public REST unit rates, fetched over HTTP or read from a file.

The shape (``{"count", "next", "previous", "results": [{"value_exc_vat", "value_inc_vat",
"valid_from", "valid_to"}]}``, newest first, paged through ``next``) is parsed here once into
:class:`PriceSlot` values; :class:`PriceBook` keeps what is known per half-hour.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import aiohttp

HALF_HOUR = timedelta(minutes=30)


class PriceFeedError(Exception):
    """The feed answered with something unusable, or could not be reached after retries."""


@dataclass(frozen=True, slots=True)
class PriceSlot:
    start: datetime
    end: datetime
    value_p: Decimal


def _instant(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise PriceFeedError(f"{where}: not an instant")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PriceFeedError(f"{where}: {value!r} is not an ISO-8601 instant") from None
    if t.tzinfo is None:
        raise PriceFeedError(f"{where}: {value!r} has no offset")
    return t


def parse_unit_rates(doc: Any) -> list[PriceSlot]:
    """Parse one page (or a whole file) of unit rates into half-hour slots, oldest first.

    Rates valid for longer than 30 minutes (fixed tariffs) are split into half-hours; an open
    ``valid_to`` (null) is refused, since we cannot know how far it runs.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("results"), list):
        raise PriceFeedError("results: missing or not a list")
    out: list[PriceSlot] = []
    for i, r in enumerate(doc["results"]):
        where = f"results[{i}]"
        if not isinstance(r, Mapping):
            raise PriceFeedError(f"{where}: not an object")
        start = _instant(r.get("valid_from"), f"{where}.valid_from")
        end = _instant(r.get("valid_to"), f"{where}.valid_to")
        try:
            value = Decimal(str(r["value_inc_vat"]))
        except (KeyError, InvalidOperation):
            raise PriceFeedError(f"{where}.value_inc_vat: missing or not a number") from None
        if end <= start:
            raise PriceFeedError(f"{where}: valid_to is not after valid_from")
        t = start
        while t < end:
            out.append(PriceSlot(t, t + HALF_HOUR, value))
            t += HALF_HOUR
    out.sort(key=lambda s: s.start)
    return out


class PriceBook:
    """Known half-hourly import/export prices, keyed by UTC start."""

    def __init__(self) -> None:
        self.imports: dict[datetime, Decimal] = {}
        self.exports: dict[datetime, Decimal] = {}

    def add(self, direction: str, slots: Sequence[PriceSlot]) -> int:
        book = self.imports if direction == "import" else self.exports
        new = 0
        for s in slots:
            if book.get(s.start) != s.value_p:
                new += 1
            book[s.start] = s.value_p
        return new

    def known_until(self, start: datetime, direction: str = "import") -> datetime:
        """End of the contiguous run of known prices from ``start``'s half-hour."""
        book = self.imports if direction == "import" else self.exports
        t = floor_half_hour(start)
        while t in book:
            t += HALF_HOUR
        return t

    def series(
        self,
        start: datetime,
        n: int,
        fallback: Callable[[datetime], tuple[Decimal, Decimal]],
    ) -> tuple[list[Decimal], list[Decimal], int]:
        """n half-hours of (import, export) prices from ``start``; gaps use ``fallback``.
        Returns the two series and how many slots used the fallback."""
        imp: list[Decimal] = []
        exp: list[Decimal] = []
        missing = 0
        t = start
        for _ in range(n):
            fi, fe = fallback(t)
            i = self.imports.get(t)
            e = self.exports.get(t)
            if i is None:
                missing += 1
            imp.append(fi if i is None else i)
            exp.append(fe if e is None else e)
            t += HALF_HOUR
        return imp, exp, missing


def floor_half_hour(t: datetime) -> datetime:
    return t.replace(minute=30 if t.minute >= 30 else 0, second=0, microsecond=0)


def read_price_file(path: Path) -> list[PriceSlot]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise PriceFeedError(f"{path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise PriceFeedError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_unit_rates(doc)


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
    attempts: int = 4,
    sleep: Callable[[float], Any] = asyncio.sleep,
    timeout_s: float = 10.0,
) -> list[PriceSlot]:
    """Fetch every page between the two instants, with jittered retries per page."""
    url: str | None = unit_rates_url(base_url, product, tariff)
    params: dict[str, str] | None = {
        "period_from": period_from.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "period_to": period_to.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "page_size": "1500",
    }
    out: list[PriceSlot] = []
    pages = 0
    while url is not None:
        pages += 1
        if pages > 100:
            raise PriceFeedError("more than 100 pages: refusing to follow `next` further")
        doc = await _get_json(session, url, params, attempts, sleep, timeout_s)
        out.extend(parse_unit_rates(doc))
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
            await sleep(random.uniform(0, min(30.0, 0.5 * 2**attempt)))
    raise PriceFeedError(f"{url}: unreachable after {attempts} attempts ({last})")
