from datetime import UTC, datetime

import structlog

from flexd.control.events import Event, EventBus
from flexd.control.plan import Plan

T0 = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)


async def test_a_failing_listener_is_logged_and_the_others_still_hear():
    bus = EventBus()
    heard = []

    async def broken(event):
        raise RuntimeError("boom")

    async def ok(event):
        heard.append(event.kind)

    bus.subscribe(broken)
    bus.subscribe(ok)
    with structlog.testing.capture_logs() as logs:
        await bus.emit(Event("state", "home", "battery", {}))
    assert heard == ["state"] and bus.failures == 1
    assert [(e["event"], e["error"]) for e in logs] == [("listener_failed", "RuntimeError: boom")]


def _plan():
    return Plan(
        start=T0, slot_minutes=30, objective_p=123.4567, status="optimal",
        import_price_p=(7.0, 7.5), export_price_p=(15.0, 15.0),
        grid_import_kwh=(3.7, 1.25), grid_export_kwh=(0.0, 0.0),
        battery_charge_kwh=(1.5, 0.0), battery_discharge_kwh=(0.0, 0.2),
        battery_soc_kwh=(6.5, 6.3), battery_capacity_kwh=9.5,
        load_kwh=(0.4, 0.5), pv_kwh=(0.0, 0.0),
        ev_charge_kwh={"car": (3.7, 0.0)}, ev_soc_kwh={"car": (20.0, 20.0)},
        ev_shortfall_kwh={"car": 0.0},
        ev_dispatches={"car": ((T0, datetime(2026, 1, 15, 22, 30, tzinfo=UTC), 3.7),)},
        fallback_slots=1,
    )  # fmt: skip


def test_plan_round_trips_through_its_stored_json():
    plan = _plan()
    back = Plan.from_json(plan.to_json())
    assert back == plan
    assert back.to_json() == plan.to_json()


def test_a_plan_is_frozen():
    import dataclasses

    import pytest

    with pytest.raises(dataclasses.FrozenInstanceError):
        _plan().objective_p = 0.0  # type: ignore[misc]
