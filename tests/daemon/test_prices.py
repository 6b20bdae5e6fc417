from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from core.clock import ManualClock
from flexd.prices.feed import PriceFeedError, fetch_unit_rates, parse_unit_rates
from rating.prices import PriceBook
from simulator.octopus_api import OctopusPriceSimulator

# 2026-06-10 10:00 BST
T0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


def test_parse_splits_long_rates_and_sorts_oldest_first():
    doc = {"results": [
        {"value_inc_vat": -1.5, "valid_from": "2026-06-10T01:00:00Z", "valid_to": "2026-06-10T01:30:00Z"},
        {"value_inc_vat": 24.5, "valid_from": "2026-06-10T00:00:00Z", "valid_to": "2026-06-10T01:00:00Z"},
    ]}  # fmt: skip
    slots = parse_unit_rates(doc)
    assert [s.start.minute for s in slots] == [0, 30, 0]
    assert [s.value_p for s in slots] == [Decimal("24.5"), Decimal("24.5"), Decimal("-1.5")]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({}, "results"),
        ({"results": [{"valid_from": "x", "valid_to": "2026-01-01T00:00Z"}]}, "valid_from"),
        ({"results": [{"value_inc_vat": 1, "valid_from": "2026-01-01T00:00:00",
                       "valid_to": "2026-01-01T00:30:00Z"}]}, "no offset"),
        ({"results": [{"value_inc_vat": "abc", "valid_from": "2026-01-01T00:00:00Z",
                       "valid_to": "2026-01-01T00:30:00Z"}]}, "value_inc_vat"),
    ],
)  # fmt: skip
def test_parse_errors_name_the_field(doc, field):
    with pytest.raises(PriceFeedError, match=field):
        parse_unit_rates(doc)


async def _fetch(sim, port, start, end, page_size_max=None):
    if page_size_max:
        sim.page_size_max = page_size_max
    async with aiohttp.ClientSession() as session:
        return await fetch_unit_rates(
            session,
            f"http://127.0.0.1:{port}",
            "AGILE-24-10-01",
            "E-1R-AGILE-24-10-01-C",
            start,
            end,
        )


async def test_feed_pages_through_next_and_publishes_at_four():
    clock = ManualClock(T0)
    sim = OctopusPriceSimulator(clock)
    runner, port = await sim.start()
    try:
        morning = await _fetch(sim, port, T0, T0 + timedelta(days=2), page_size_max=7)
        # Before 16:00 local, prices run to local midnight tonight (23:00Z in summer).
        assert morning[-1].end == datetime(2026, 6, 10, 23, 0, tzinfo=UTC)
        assert len(morning) == 28 and sim.requests == 4  # 7 per page
        clock.set(datetime(2026, 6, 10, 15, 0, tzinfo=UTC))  # 16:00 BST
        evening = await _fetch(sim, port, T0, T0 + timedelta(days=2))
        assert evening[-1].end == datetime(2026, 6, 11, 23, 0, tzinfo=UTC)
        book = PriceBook()
        book.add("import", evening)
        assert book.known_until(T0) == datetime(2026, 6, 11, 23, 0, tzinfo=UTC)
    finally:
        await runner.cleanup()


async def test_feed_down_is_an_error_after_retries():
    clock = ManualClock(T0)
    sim = OctopusPriceSimulator(clock, down=True)
    runner, port = await sim.start()
    try:
        async with aiohttp.ClientSession() as session:

            async def no_sleep(_s):
                return None

            with pytest.raises(PriceFeedError, match="503"):
                await fetch_unit_rates(
                    session,
                    f"http://127.0.0.1:{port}",
                    "P",
                    "T",
                    T0,
                    T0 + timedelta(hours=1),
                    sleep=no_sleep,
                )
        assert sim.requests == 4
    finally:
        await runner.cleanup()


def test_book_series_uses_fallback_for_gaps():
    book = PriceBook()
    book.add(
        "import",
        parse_unit_rates(
            {
                "results": [
                    {
                        "value_inc_vat": 10,
                        "valid_from": "2026-06-10T09:00:00Z",
                        "valid_to": "2026-06-10T09:30:00Z",
                    }
                ]
            }
        ),
    )
    imp, exp, missing = book.series(T0, 2, lambda t: (Decimal(25), Decimal(15)))
    assert imp == [Decimal(10), Decimal(25)] and exp == [Decimal(15), Decimal(15)] and missing == 1


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "markallanson_octopus-energy"


@pytest.mark.skipif(not (SHARED / "get_tariff_response.json").exists(), reason="../shared is absent")
def test_a_real_fixed_tariff_with_an_open_current_rate_parses_within_the_window():
    # A real Octopus answer for a fixed product: the current rate has valid_to null. It used to
    # fail the whole fetch; within a window it runs to the window's end.
    import json

    doc = json.loads((SHARED / "get_tariff_response.json").read_text())
    window = (datetime(2021, 3, 1, 0, 0, tzinfo=UTC), datetime(2021, 3, 2, 0, 0, tzinfo=UTC))
    slots = parse_unit_rates(doc, window)
    assert len(slots) == 48 and {s.value_p for s in slots} == {Decimal("21.672")}
    assert slots[0].start == window[0] and slots[-1].end == window[1]
    with pytest.raises(PriceFeedError, match="valid_to"):
        parse_unit_rates(doc)  # no window: nobody can say how far an open rate runs


def test_prices_per_payment_method_are_told_apart_whatever_the_page_order():
    rows = [
        {"value_inc_vat": 24.0, "valid_from": "2026-06-10T09:00:00Z", "valid_to": "2026-06-10T09:30:00Z",
         "payment_method": "NON_DIRECT_DEBIT"},
        {"value_inc_vat": 22.8, "valid_from": "2026-06-10T09:00:00Z", "valid_to": "2026-06-10T09:30:00Z",
         "payment_method": "DIRECT_DEBIT"},
    ]  # fmt: skip
    for order in (rows, rows[::-1]):
        assert [s.value_p for s in parse_unit_rates({"results": order})] == [Decimal("22.8")]
        got = parse_unit_rates({"results": order}, payment_method="NON_DIRECT_DEBIT")
        assert [s.value_p for s in got] == [Decimal("24.0")]
