"""Table tests for the rating rules (domain.md), each checked against the per-slot reference."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from rating import PriceBook, Reading, load_tariff, rate
from rating.reference import rate_reference
from tests.rating.helpers import M, bands, day_readings, local, smart

IO_GO = load_tariff("io-go")
CAPPED = load_tariff("io-go-capped")
IO_FLUX = load_tariff("io-flux")
FLUX = load_tariff("flux")
AGILE = load_tariff("agile")


def both(tariff, readings, dispatches=(), prices=None):
    got = rate(tariff, readings, dispatches, prices)
    assert got == rate_reference(tariff, readings, dispatches, prices)
    return got


def night(y, mo, d):
    """Readings for every half-hour from local noon on day d to local noon the next day."""
    start = local(y, mo, d, 12)
    end = local(y, mo, d + 1, 12)
    n = int((end - start).total_seconds() // 1800)
    return day_readings(start, n)


@pytest.mark.parametrize(
    ("day", "expected_off_peak", "expected_slots"),
    [
        ((2026, 1, 15), 12, 48),  # an ordinary winter night: 23:30-05:30
        ((2026, 3, 28), 10, 46),  # spring forward: 01:00-02:00 local does not exist
        ((2026, 10, 24), 14, 50),  # fall back: 01:00-02:00 local happens twice
        ((2026, 7, 1), 12, 48),  # summer: the window is 22:30Z-04:30Z
    ],
)
def test_clock_change_nights_count_off_peak_half_hours(day, expected_off_peak, expected_slots):
    readings = night(*day)
    assert len(readings) == expected_slots
    got = both(IO_GO, readings)
    b = bands(got)
    assert sum(1 for v in b.values() if v == "off-peak") == expected_off_peak


def test_summer_window_is_local_not_utc():
    b = bands(both(IO_GO, night(2026, 7, 1)))
    assert b[datetime(2026, 7, 1, 22, 30, tzinfo=UTC)] == "off-peak"  # 23:30 BST
    assert b[datetime(2026, 7, 1, 22, 0, tzinfo=UTC)] == "peak"
    assert b[datetime(2026, 7, 2, 4, 0, tzinfo=UTC)] == "off-peak"  # 05:00 BST
    assert b[datetime(2026, 7, 2, 4, 30, tzinfo=UTC)] == "peak"  # 05:30 BST


@pytest.mark.parametrize(
    ("day", "periods"),
    [((2026, 3, 29), 46), ((2026, 10, 25), 50), ((2026, 1, 15), 48)],
)
def test_settlement_periods_on_short_and_long_days(day, periods):
    start = local(*day, 0)
    readings = day_readings(start, periods)
    got = [s for s in both(IO_GO, readings) if s.register == "import"]
    assert [s.settlement_period for s in got] == list(range(1, periods + 1))
    assert {s.settlement_date for s in got} == {date(*day)}


def test_one_minute_dispatch_makes_its_half_hour_smart():
    readings = day_readings(local(2026, 1, 15, 9), 4)
    got = bands(both(IO_GO, readings, [smart(local(2026, 1, 15, 10, 25), local(2026, 1, 15, 10, 26))]))
    assert got[local(2026, 1, 15, 10)] == "smart-charge"
    assert got[local(2026, 1, 15, 9, 30)] == "peak"
    assert got[local(2026, 1, 15, 10, 30)] == "peak"


def test_dispatch_1930_to_2015_makes_two_half_hours():
    readings = day_readings(local(2026, 1, 15, 19), 4)
    got = bands(both(IO_GO, readings, [smart(local(2026, 1, 15, 19, 30), local(2026, 1, 15, 20, 15))]))
    assert [got[local(2026, 1, 15, 19, m)] for m in (0, 30)] == ["peak", "smart-charge"]
    assert [got[local(2026, 1, 15, 20, m)] for m in (0, 30)] == ["smart-charge", "peak"]


def test_dispatch_ending_on_a_boundary_does_not_touch_the_next():
    readings = day_readings(local(2026, 1, 15, 19), 4)
    got = bands(both(IO_GO, readings, [smart(local(2026, 1, 15, 19), local(2026, 1, 15, 19, 30))]))
    assert got[local(2026, 1, 15, 19, 30)] == "peak"


def test_overlapping_dispatches_count_each_half_hour_once():
    readings = day_readings(local(2026, 1, 15, 16), 6)
    ds = [smart(local(2026, 1, 15, 16, 10), local(2026, 1, 15, 17, 5)),
          smart(local(2026, 1, 15, 16, 40), local(2026, 1, 15, 17, 40))]  # fmt: skip
    got = bands(both(IO_GO, readings, ds))
    assert [got[local(2026, 1, 15, 16 + i // 2, 30 * (i % 2))] for i in range(6)] == [
        "smart-charge", "smart-charge", "smart-charge", "smart-charge", "peak", "peak"]  # fmt: skip


@pytest.mark.parametrize("kind", ["boost", "test"])
def test_boost_and_test_never_change_a_band(kind):
    readings = day_readings(local(2026, 1, 15, 17), 2) + day_readings(local(2026, 1, 16, 1), 2)
    ds = [smart(local(2026, 1, 15, 17), local(2026, 1, 15, 18), kind=kind),
          smart(local(2026, 1, 16, 1), local(2026, 1, 16, 2), kind=kind)]  # fmt: skip
    got = bands(both(IO_GO, readings, ds))
    assert got[local(2026, 1, 15, 17)] == "peak"  # boost in the peak is billed at peak
    assert got[local(2026, 1, 16, 1)] == "off-peak"  # in the window it is off-peak anyway


def test_away_dispatches_never_change_a_band():
    readings = day_readings(local(2026, 1, 15, 17), 2)
    got = bands(both(IO_GO, readings, [smart(local(2026, 1, 15, 17), local(2026, 1, 15, 18), location="away")]))
    assert set(got.values()) == {"peak"}


def test_planned_counts_only_in_planned_mode():
    import dataclasses

    readings = day_readings(local(2026, 1, 15, 17), 2)
    ds = [smart(local(2026, 1, 15, 17), local(2026, 1, 15, 17, 20), status="planned")]
    assert set(bands(both(IO_GO, readings, ds)).values()) == {"peak"}
    provisional = dataclasses.replace(IO_GO, dispatch_mode="planned")
    got = bands(both(provisional, readings, ds))
    assert got[local(2026, 1, 15, 17)] == "smart-charge"


def _car_day(ev_slots, start):
    out = []
    for i in range(ev_slots):
        t = start + timedelta(minutes=30 * i)
        out.append(Reading(M, t, Decimal("4.00"), "import"))
        out.append(Reading(M, t, Decimal("3.50"), "ev"))
    return out


def test_cap_crossing_midday_and_running_out_inside_a_dispatch():
    # A dispatch 05:30-14:00 local: 13 half-hours before midday exhaust the 12-block allowance
    # inside the dispatch; after midday a new period starts with a fresh allowance.
    start = local(2026, 1, 15, 5, 30)
    readings = _car_day(17, start)
    got = both(CAPPED, readings, [smart(start, local(2026, 1, 15, 14))])
    ev = {s.start: (s.band, s.unit_rate_p) for s in got if s.register == "ev"}
    home = bands(got)
    times = sorted(ev)
    assert [ev[t][0] for t in times] == ["off-peak"] * 12 + ["peak"] + ["off-peak"] * 4
    assert ev[times[12]][1] == CAPPED.rate("ev", "peak")
    assert home[times[11]] == "smart-charge" and home[times[12]] == "peak"


def test_cap_counts_window_half_hours_too():
    # 12 SMART half-hours inside the core window use the allowance; a 13th at 06:00 is peak.
    start = local(2026, 1, 15, 23, 30)
    readings = _car_day(14, start)
    got = both(CAPPED, readings, [smart(start, local(2026, 1, 16, 6, 30))])
    ev = {s.start: s.band for s in got if s.register == "ev"}
    home = bands(got)
    assert ev[local(2026, 1, 16, 6)] == "peak"
    assert home[local(2026, 1, 16, 6)] == "peak"
    assert home[local(2026, 1, 16, 5)] == "off-peak"


def test_car_home_split_and_boost_at_car_peak_even_at_night():
    t = local(2026, 1, 16, 2)
    readings = [Reading(M, t, Decimal("5.00")), Reading(M, t, Decimal("3.70"), "ev")]
    got = both(CAPPED, readings, [smart(t, t + timedelta(minutes=30), kind="boost")])
    by_reg = {s.register: s for s in got if s.start == t}
    assert by_reg["import"].kwh == Decimal("1.30") and by_reg["import"].band == "off-peak"
    assert by_reg["ev"].band == "peak" and by_reg["ev"].cost_p == Decimal("100.68")  # 3.70 x 27.21


def test_ev_register_ignored_by_uncapped_tariffs():
    t = local(2026, 1, 16, 2)
    readings = [Reading(M, t, Decimal("5.00")), Reading(M, t, Decimal("3.70"), "ev")]
    got = both(IO_GO, readings)
    assert {s.register for s in got} == {"import", "standing"}


def test_io_flux_import_and_export_symmetric():
    readings = day_readings(local(2026, 6, 15, 15), 6) + day_readings(local(2026, 6, 15, 15), 6, register="export")
    got = both(IO_FLUX, readings)
    imp = {s.start: (s.band, s.unit_rate_p) for s in got if s.register == "import"}
    exp = {s.start: (s.band, s.unit_rate_p) for s in got if s.register == "export"}
    assert imp == exp
    assert imp[local(2026, 6, 15, 16)][0] == "peak" and imp[local(2026, 6, 15, 15, 30)][0] == "off-peak"
    assert imp[local(2026, 6, 15, 17, 30)][0] == "peak"


def test_flux_three_bands():
    readings = day_readings(local(2026, 1, 15, 0), 48)
    b = bands(both(FLUX, readings))
    assert b[local(2026, 1, 15, 2)] == "off-peak" and b[local(2026, 1, 15, 5)] == "day"
    assert b[local(2026, 1, 15, 16)] == "peak" and b[local(2026, 1, 15, 19)] == "day"


def test_agile_negative_prices_credit_the_customer():
    t = local(2026, 1, 15, 13)
    prices = PriceBook.from_mapping({t: Decimal("-4.2105"), t + timedelta(minutes=30): Decimal("12.5")})
    readings = day_readings(t, 2, kwh="2.00")
    got = [s for s in both(AGILE, readings, prices=prices) if s.register == "import"]
    assert [s.cost_p for s in got] == [Decimal("-8.42"), Decimal("25.00")]
    assert {s.band for s in got} == {"agile"}


@pytest.mark.parametrize(
    ("kwh", "rate_p", "billed_kwh", "cost"),
    [
        ("0.125", "10", "0.12", "1.20"),  # kWh half-to-even down
        ("0.135", "10", "0.14", "1.40"),  # kWh half-to-even up
        ("0.50", "0.25", "0.50", "0.12"),  # cost 0.125p -> 0.12p
        ("0.50", "0.35", "0.50", "0.18"),  # cost 0.175p -> 0.18p
        ("1.00", "-0.125", "1.00", "-0.12"),  # negative half goes to even too
    ],
)
def test_rounding_half_to_even(kwh, rate_p, billed_kwh, cost):
    t = local(2026, 1, 15, 13)
    got = [s for s in both(AGILE, [Reading(M, t, Decimal(kwh))], prices=PriceBook.from_mapping({t: Decimal(rate_p)}))
           if s.register == "import"]  # fmt: skip
    assert (str(got[0].kwh), str(got[0].cost_p)) == (billed_kwh, cost)


def test_standing_row_per_meter_per_local_day():
    readings = day_readings(local(2026, 1, 15, 22), 6) + day_readings(local(2026, 1, 15, 22), 2, meter="m2")
    got = both(IO_GO, readings)
    standing = [(s.meter, s.settlement_date, s.start) for s in got if s.register == "standing"]
    assert standing == [
        ("m1", date(2026, 1, 15), local(2026, 1, 15, 0)),
        ("m1", date(2026, 1, 16), local(2026, 1, 16, 0)),
        ("m2", date(2026, 1, 15), local(2026, 1, 15, 0)),
    ]
    assert [s.meter for s in got] == sorted(s.meter for s in got)


def test_agile_prices_finer_than_four_decimals_are_kept_exactly():
    # The live API returns prices such as 13.50195 p: the rated line carries that price and
    # rounds only its cost (kWh x price, half-even to 0.01 p), like the per-slot reference.
    from rating.csv_fast import rate_csv_text
    from rating.io import rated_csv_text

    t = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    readings = [Reading(M, t, Decimal("1.37")), Reading(M, t + timedelta(minutes=30), Decimal("2"))]
    prices = PriceBook.from_mapping({t: Decimal("13.50195"), t + timedelta(minutes=30): Decimal("-0.123456")})
    got = [s for s in both(AGILE, readings, prices=prices) if s.register == "import"]
    assert [(s.unit_rate_p, s.cost_p) for s in got] == [
        (Decimal("13.50195"), Decimal("18.50")),  # 1.37 x 13.50195 = 18.4976715
        (Decimal("-0.123456"), Decimal("-0.25")),  # 2 x -0.123456 = -0.246912
    ]
    assert rate_csv_text(AGILE, readings, (), prices) == rated_csv_text(rate(AGILE, readings, (), prices))
    assert ",13.50195,18.50\n" in rate_csv_text(AGILE, readings, (), prices)
