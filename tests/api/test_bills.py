"""Bills and the Direct Debit check through a real server, on SQLite and PostgreSQL: made from
the stored latest rated versions, stored, listed, read back; a re-rating of a billed slot on
the next bill with the backbilling rule; concurrent bills charge a re-rating once."""

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from core.timegrid import LONDON
from flexd.storage import RatedRow
from tests.api.conftest import APP, BILL, NOW, auth

BILLS = "/api/v1/meters/M1/bills"
DD = "/api/v1/accounts/A1/direct-debit"


def rated(day, period, cost, register="import", band="peak", meter="M1"):
    midnight = datetime.combine(day, time(0), tzinfo=LONDON).astimezone(UTC)
    start = midnight + timedelta(minutes=30 * (period - 1))
    return RatedRow(meter, start, register, 0, day.isoformat(), period, Decimal("1.00"), band,
                    Decimal("20.00"), Decimal(cost), NOW, "test")  # fmt: skip


async def post(http, body, status=201):
    r = await http.post(BILLS, headers=auth(BILL), json=body)
    doc = await r.json()
    assert r.status == status, doc
    return doc


async def test_a_bill_is_made_stored_listed_and_read_back(api_any):
    http, service = api_any
    feb = date(2026, 2, 10)
    await service.storage.add_rated([rated(feb, 1, "100.40"), rated(feb, 2, "100.40"),
                                     rated(feb, 1, "53.35", "standing", "standing"),
                                     rated(date(2026, 3, 1), 1, "999.00")])  # fmt: skip
    body = {"from": "2026-02-01", "to": "2026-03-01", "bill_date": "2026-03-01"}
    doc = await post(http, body)
    assert (doc["meter"], doc["from"], doc["to"], doc["account_type"]) == (
        "M1", "2026-02-01", "2026-03-01", "domestic")
    assert [(ln["register"], ln["cost_p"]) for ln in doc["lines"]] == [
        ("import", 201), ("standing", 53)]
    assert (doc["charges_p"], doc["rebill"], doc["billable_p"]) == (254, False, 254)
    got = await http.get(f"{BILLS}/{doc['id']}", headers=auth(BILL))
    assert await got.json() == doc
    listing = await (await http.get(BILLS, headers=auth(BILL))).json()
    assert [(b["id"], b["billable_p"]) for b in listing["bills"]] == [(doc["id"], 254)]


async def test_a_rerating_of_a_billed_slot_shows_on_the_next_bill(api_any):
    http, service = api_any
    old, recent = date(2025, 1, 10), date(2026, 2, 10)
    await service.storage.add_rated([rated(old, 1, "100.00"), rated(recent, 1, "100.00")])
    await post(http, {"from": "2025-01-01", "to": "2025-02-01", "bill_date": "2025-02-01"})
    await post(http, {"from": "2026-02-01", "to": "2026-03-01", "bill_date": "2026-03-01"})
    # Both days are re-rated up by 50 p (settled readings arrive).
    await service.storage.add_rated([rated(old, 1, "150.00"), rated(recent, 1, "150.00")])
    await service.storage.add_rated([rated(date(2026, 3, 5), 1, "10.00")])
    doc = await post(http, {"from": "2026-03-01", "to": "2026-04-01", "bill_date": "2026-04-01"})
    # March's own 10 p, plus both re-rated slots (+100 p); January 2025 is over 12 months old.
    assert (doc["rebill"], doc["difference_p"], doc["old_difference_p"]) == (True, 110, 50)
    assert (doc["written_off_p"], doc["billable_p"]) == (50, 60)
    # The next bill charges nothing again: the re-rated lines are billed now.
    doc = await post(http, {"from": "2026-04-01", "to": "2026-05-01", "bill_date": "2026-05-01"},
                     status=422)  # nothing rated in April
    assert doc["field"] == "rated"
    await service.storage.add_rated([rated(date(2026, 4, 2), 1, "5.00")])
    doc = await post(http, {"from": "2026-04-01", "to": "2026-05-01", "bill_date": "2026-05-01"})
    assert (doc["rebill"], doc["billable_p"]) == (False, 5)


async def test_rebill_of_the_same_period_and_the_balance_cap(api_any):
    http, service = api_any
    old = date(2025, 1, 10)
    await service.storage.add_rated([rated(old, 1, "100.00")])
    body = {"from": "2025-01-01", "to": "2025-02-01", "bill_date": "2025-02-01"}
    await post(http, body)
    await service.storage.add_rated([rated(old, 1, "300.00")])
    later = body | {"bill_date": "2026-06-01", "balance_p": 120, "account_type": "business"}
    doc = await post(http, later)
    assert (doc["previously_billed_p"], doc["old_difference_p"]) == (100, 200)
    assert (doc["written_off_p"], doc["billable_p"]) == (80, 120)
    assert [d["type"] for d in doc["documents"]] == ["invoice", "credit_note"]


async def test_concurrent_bills_charge_a_rerating_once(api_any):
    http, service = api_any
    day = date(2026, 2, 10)
    await service.storage.add_rated([rated(day, 1, "100.00")])
    await post(http, {"from": "2026-02-01", "to": "2026-03-01", "bill_date": "2026-03-01"})
    await service.storage.add_rated([rated(day, 1, "140.00")])
    await service.storage.add_rated([rated(date(2026, 3, 2), p, "1.00") for p in (1, 2)])
    body = {"from": "2026-03-01", "to": "2026-04-01", "bill_date": "2026-04-01"}
    docs = await asyncio.gather(*(post(http, body) for _ in range(8)))
    # Exactly one of them charges March's 2 p and the +40 p re-rating; the others are re-bills
    # of March that find it billed already, and the re-rating too: they charge nothing.
    assert sorted(d["difference_p"] for d in docs) == [0] * 7 + [42]
    assert sorted(d["charges_p"] for d in docs) == [2] * 7 + [142]
    listing = await (await http.get(BILLS, headers=auth(BILL))).json()
    assert len(listing["bills"]) == 9


@pytest.mark.parametrize(("body", "field"), [
    ({"to": "2026-03-01", "bill_date": "2026-03-01"}, "from"),
    ({"from": "2026-03-01", "to": "2026-02-01", "bill_date": "2026-03-01"}, "to"),
    ({"from": "2026-02-01", "to": "2026-03-01", "bill_date": "2026-02-15"}, "to"),
    ({"from": "2026-02-01", "to": "2026-03-01", "bill_date": "2026-3-1"}, "bill_date"),
    ({"from": "0001-01-01", "to": "2026-03-01", "bill_date": "2026-03-01"}, "from"),
    ({"from": "2026-02-01", "to": "9999-12-31", "bill_date": "9999-12-31"}, "to"),
    ({"from": "2026-02-01", "to": "2026-03-01", "bill_date": "2026-03-01", "balance_p": 1.5}, "balance_p"),
    ({"from": "2026-02-01", "to": "2026-03-01", "bill_date": "2026-03-01", "balance_p": True}, "balance_p"),
    ({"from": "2026-02-01", "to": "2026-03-01", "bill_date": "2026-03-01", "customer_caused": 1}, "customer_caused"),
    ({"from": "2026-02-01", "to": "2026-03-01", "bill_date": "2026-03-01", "account_type": "x"}, "account_type"),
    ({"from": "2026-02-01", "to": "2026-03-01", "bill_date": "2026-03-01", "frm": 1}, "frm"),
    ([], "body"),
])  # fmt: skip
async def test_bad_bill_requests_422_and_store_nothing(api, body, field):
    http, service = api
    await service.storage.add_rated([rated(date(2026, 2, 10), 1, "1.00")])
    r = await http.post(BILLS, headers=auth(BILL), json=body)
    doc = await r.json()
    assert (r.status, doc["field"]) == (422, field), doc
    assert set(doc) >= {"error", "detail", "field"}
    assert (await (await http.get(BILLS, headers=auth(BILL))).json())["bills"] == []


async def test_bills_are_for_the_billing_role_and_known_meters(api):
    http, _ = api
    assert (await http.get(BILLS, headers=auth(APP))).status == 403
    assert (await http.get(BILLS)).status == 401
    assert (await http.get("/api/v1/meters/NOPE/bills", headers=auth(BILL))).status == 404
    assert (await http.get(f"{BILLS}/1", headers=auth(BILL))).status == 404
    assert (await http.get(f"{BILLS}/x", headers=auth(BILL))).status == 404
    assert (await http.get(DD, headers=auth(APP), params={"balance_p": "0",
                                                           "payment_p": "0"})).status == 403
    r = await http.get("/api/v1/accounts/NOPE/direct-debit", headers=auth(BILL),
                       params={"balance_p": "0", "payment_p": "0"})  # fmt: skip
    assert r.status == 404


async def test_direct_debit_from_stored_rated_history(api_any):
    http, service = api_any
    first = date(2025, 9, 15)
    rows = [rated(first + timedelta(days=i), 1, "50.00", "standing", "standing")
            for i in range(365)]  # fmt: skip
    await service.storage.add_rated(rows)
    # The site's tariff is io-go: 53.35 p a day, 198 days to 1 April cost 10,563.3 p.
    q = {"today": "2026-09-15", "balance_p": "-49437", "payment_p": "0", "target_weeks": "0"}
    r = await http.get(DD, headers=auth(BILL), params=q)
    doc = await r.json()
    assert r.status == 200, doc
    # The worked example: -£600 projected for April is +£50 a month.
    assert (doc["account"], doc["meter"], doc["next_april"]) == ("A1", "M1", "2027-04-01")
    assert (doc["projected_april_balance_p"], doc["adjustment_p"]) == (-60000, 5000)
    assert doc["annual_cost_p"] == 19473 and doc["change"] == "increase"  # 365 x 53.35
    assert doc["tracker"] == "too-little"


@pytest.mark.parametrize(("params", "field"), [
    ({"payment_p": "0"}, "balance_p"),
    ({"balance_p": "0", "payment_p": "-1"}, "payment_p"),
    ({"balance_p": "0", "payment_p": "0", "today": "2026-02-30"}, "today"),
    ({"balance_p": "0", "payment_p": "0", "target_weeks": "x"}, "target_weeks"),
    ({"balance_p": "0", "payment_p": "0", "colour": "red"}, "colour"),
    ({"balance_p": "0", "payment_p": "0", "today": "2026-09-15"}, "rated"),  # no history
])  # fmt: skip
async def test_direct_debit_bad_query_422(api, params, field):
    http, _ = api
    r = await http.get(DD, headers=auth(BILL), params=params)
    doc = await r.json()
    assert (r.status, doc["field"]) == (422, field), doc


async def test_a_rerating_after_the_period_shows_on_a_rebill_of_an_earlier_one(api):
    http, service = api
    jan, feb = date(2026, 1, 10), date(2026, 2, 10)
    await service.storage.add_rated([rated(jan, 1, "100.00"), rated(feb, 1, "100.00")])
    await post(http, {"from": "2026-01-01", "to": "2026-02-01", "bill_date": "2026-02-01"})
    await post(http, {"from": "2026-02-01", "to": "2026-03-01", "bill_date": "2026-03-01"})
    await service.storage.add_rated([rated(feb, 1, "120.00")])
    doc = await post(http, {"from": "2026-01-01", "to": "2026-02-01", "bill_date": "2026-03-02"})
    assert (doc["rebill"], doc["difference_p"], doc["billable_p"]) == (True, 20, 20)
