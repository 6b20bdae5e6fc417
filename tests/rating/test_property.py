"""The vectorised engine equals the per-slot reference on random inputs (hypothesis)."""

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rating import Dispatch, PriceBook, Reading, load_tariff, rate, rated_csv_text
from rating.csv_fast import rate_csv_text
from rating.reference import rate_reference

TARIFFS = {n: load_tariff(n) for n in ("io-go", "io-go-capped", "io-flux", "flux", "agile")}
# Spanning both 2026 clock changes.
BASE = datetime(2026, 3, 28, 0, 0, tzinfo=UTC)
SLOTS = 4 * 48  # two days around each change: dense enough to exhaust the allowance


def slot_instant(i):
    # Half of the draws near the spring change, half near the autumn one.
    base = BASE if i < SLOTS // 2 else datetime(2026, 10, 24, tzinfo=UTC)
    return base + timedelta(minutes=30 * (i % (SLOTS // 2)))


readings_st = st.lists(
    st.tuples(
        st.sampled_from(["m1", "m2"]),
        st.integers(0, SLOTS - 1),
        st.decimals(min_value=0, max_value=20, places=3),
        st.sampled_from(["import", "import", "export", "ev"]),
    ),
    max_size=200,
    unique_by=lambda t: (t[0], t[1], t[3]),
)
dispatch_st = st.lists(
    st.tuples(
        st.sampled_from(["m1", "m2"]),
        st.integers(0, SLOTS * 1800 - 1),
        st.integers(1, 10 * 3600),
        st.sampled_from(["smart", "smart", "boost", "test"]),
        st.sampled_from(["planned", "completed"]),
        st.sampled_from(["home", "home", "away"]),
    ),
    max_size=25,
)


@pytest.mark.parametrize("name", sorted(TARIFFS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(["completed", "planned"]),
    raw_readings=readings_st,
    raw_dispatches=dispatch_st,
)
def test_engine_equals_reference(name, mode, raw_readings, raw_dispatches):
    tariff = dataclasses.replace(TARIFFS[name], dispatch_mode=mode)
    # m1 imports in every half-hour, so whatever the dispatches touch is rated.
    full = [Reading("m1", slot_instant(i), Decimal(i % 7) / 4, "import") for i in range(SLOTS)]
    extra = [
        Reading(m, slot_instant(i), kwh, reg)
        for m, i, kwh, reg in raw_readings
        if not (m == "m1" and reg == "import")
    ]
    readings = full + extra
    dispatches = []
    for m, offset, length, kind, status, loc in raw_dispatches:
        base = BASE if offset < SLOTS * 900 else datetime(2026, 10, 24, tzinfo=UTC)
        start = base + timedelta(seconds=offset % (SLOTS * 900))
        dispatches.append(Dispatch(m, start, start + timedelta(seconds=length), kind, status, loc))
    prices = PriceBook.from_mapping({r.start: Decimal(int(r.kwh * 1000) % 4000 - 500) / 100 for r in readings})
    slots = rate(tariff, readings, dispatches, prices)
    assert slots == rate_reference(tariff, readings, dispatches, prices)
    # The fast rated.csv path writes the very same file.
    assert rate_csv_text(tariff, readings, dispatches, prices) == rated_csv_text(slots)
