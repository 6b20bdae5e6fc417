from dataclasses import dataclass, field

import pytest

from core.errors import FieldError
from core.fields import at_least, parse_fields, within
from core.timegrid import day_bounds, half_hour_start, local_days, next_local
from devices.retry import Backoff


@dataclass(frozen=True)
class Opts:
    port: int = field(default=1, metadata=within(0, 9))
    rate: float = field(default=1.0, metadata=at_least(0.5))
    name: str | None = None
    on: bool = False


@pytest.mark.parametrize(
    ("doc", "where", "reason"),
    [
        ({"prot": 1}, "dev.prot", "unknown key"),
        ({"port": True}, "dev.port", "must be an integer"),
        ({"port": 1.0}, "dev.port", "must be an integer"),
        ({"port": 10}, "dev.port", "must be <= 9"),
        ({"rate": "1"}, "dev.rate", "must be a number"),
        ({"rate": float("inf")}, "dev.rate", "must be a finite number"),
        ({"rate": 0.1}, "dev.rate", "must be >= 0.5"),
        ({"name": 3}, "dev.name", "must be a string"),
        ({"on": 1}, "dev.on", "must be true or false"),
    ],
)
def test_parse_fields_refuses_with_the_key_path(doc, where, reason):
    with pytest.raises(FieldError) as info:
        parse_fields(Opts, doc, "dev.")
    assert (info.value.field, info.value.reason) == (where, reason)
    assert str(info.value) == f"{where}: {reason}"


def test_parse_fields_builds_and_leaves_ignored_keys_alone():
    got = parse_fields(Opts, {"port": 3, "rate": 2, "name": "x", "id": "ignored"}, "", ignore={"id"})
    assert got == Opts(port=3, rate=2.0, name="x") and isinstance(got.rate, float)


def test_london_grid_helpers_across_the_clock_change():
    from datetime import UTC, date, datetime

    assert half_hour_start(datetime(2026, 3, 29, 0, 47, 12, tzinfo=UTC)) == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    start, end = day_bounds(date(2026, 3, 29))  # 23 hours: clocks go forward
    assert (end - start).total_seconds() == 23 * 3600
    start, end = day_bounds(date(2026, 10, 25))  # 25 hours: clocks go back
    assert (end - start).total_seconds() == 25 * 3600
    assert local_days([datetime(2026, 6, 1, 23, 30, tzinfo=UTC)]) == {date(2026, 6, 2)}  # 00:30 BST
    assert next_local(datetime(2026, 6, 1, 17, 0, tzinfo=UTC), "18:00") == datetime(2026, 6, 2, 17, 0, tzinfo=UTC)


def test_backoff_doubles_to_its_cap_and_keeps_its_floor():
    import random

    b = Backoff(base_s=1.0, cap_s=8.0, floor=0.5)
    assert [b.step(n) for n in range(6)] == [1, 2, 4, 8, 8, 8]
    rng = random.Random(1)
    delays = [b.delay(3, rng) for _ in range(200)]
    assert min(delays) >= 4.0 and max(delays) <= 8.0
    assert Backoff().step(10_000) == Backoff().cap_s  # no overflow on a long outage
