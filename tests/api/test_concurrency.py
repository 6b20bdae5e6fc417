"""Races through the real API, on SQLite and PostgreSQL: no 5xx, nothing lost, one dispatch."""

import asyncio
from datetime import timedelta

from tests.api.conftest import APP, BILL, NOW, auth

BUMP = "/api/v1/devices/home-charger/bump-charge"


async def test_fifty_simultaneous_bumps_with_one_key_make_one_dispatch(api_any):
    http, service = api_any
    headers = auth(APP) | {"Idempotency-Key": "tap-7f3a"}

    async def bump():
        r = await http.post(BUMP, headers=headers, json={"duration_minutes": 30})
        return r.status, await r.json()

    answers = await asyncio.gather(*(bump() for _ in range(50)))
    assert {status for status, _ in answers} == {202}
    assert len({body["id"] for _, body in answers}) == 1
    assert all(body == answers[0][1] for _, body in answers)  # the first body, every time
    boosts = await service.storage.dispatches(device_id="home-charger", kind="boost")
    assert len(boosts) == 1
    # The same key with another body is refused; nothing new is stored.
    r = await http.post(BUMP, headers=headers, json={"duration_minutes": 45})
    assert r.status == 409 and (await r.json())["error"] == "idempotency-key-reused"
    assert len(await service.storage.dispatches(device_id="home-charger", kind="boost")) == 1


async def test_twenty_clients_posting_readings_at_once_get_no_5xx_and_lose_nothing(api_any):
    http, service = api_any
    day = NOW.replace(hour=0) - timedelta(days=3)

    async def client(c):
        statuses = []
        for b in range(5):  # 5 batches of 48, overlapping the other clients' half-hours
            start = day + timedelta(days=b % 3)
            body = {"readings": [
                {"start": (start + timedelta(minutes=30 * i)).isoformat(),
                 "kwh": f"0.{(c * 7 + i) % 90 + 10}"} for i in range(48)]}  # fmt: skip
            r = await http.post("/api/v1/meters/M1/readings", headers=auth(BILL), json=body)
            statuses.append(r.status)
        return statuses

    statuses = [s for per in await asyncio.gather(*(client(c) for c in range(20))) for s in per]
    assert statuses == [200] * 100
    stored = await service.storage.readings("M1", day, day + timedelta(days=3))
    assert len(stored) == 3 * 48  # every half-hour once: none lost, none doubled
