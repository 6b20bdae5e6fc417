"""Bills and the slot lines each one billed, on either engine (:mod:`flexd.storage.driver`).

A bill is made and stored in one transaction, locked per meter: the read of the latest rated
versions and of what earlier bills charged for those slots, the pure computation, the bill row
and its billed slots commit together or not at all, and two bills for one meter never read the
same "already billed" state (so a re-rating is charged once).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flexd.storage.driver import Driver, Tx
from flexd.storage.rows import RatedRow, parse_ts, ts
from flexd.storage.store import _latest_rated

BILLED_COLS = (
    "meter, start, register, settlement_date, settlement_period, kwh, band, unit_rate_p, cost_p"
)


@dataclass(frozen=True, slots=True)
class BilledRow:
    """A slot's line as a bill charged it."""

    meter: str
    start: datetime
    register: str
    settlement_date: str
    settlement_period: int
    kwh: Decimal
    band: str
    unit_rate_p: Decimal
    cost_p: Decimal


@dataclass(frozen=True, slots=True)
class BillInputs:
    """What a new bill is made from: the latest rated versions (the period's slots, plus every
    billed slot outside it whose rating changed since it was billed) and what earlier bills charged
    for those slots (``billed`` is None when none of them was ever billed)."""

    current: list[RatedRow]
    billed: list[BilledRow] | None


# The pure part, run inside the transaction: inputs -> the bill's JSON document.
Compose = Callable[[BillInputs], dict[str, Any]]


def _billed_from_db(r: Sequence[Any]) -> BilledRow:
    return BilledRow(r[0], parse_ts(r[1]), r[2], r[3], int(r[4]), Decimal(r[5]), r[6],
                     Decimal(r[7]), Decimal(r[8]))  # fmt: skip


async def _latest_billed(tx: Tx, meter: str, start: str, end: str) -> list[BilledRow]:
    sql = (
        f"SELECT {BILLED_COLS} FROM billed_slots b WHERE meter = ? AND start >= ? AND start < ?"
        " AND bill_id = (SELECT MAX(bill_id) FROM billed_slots x WHERE x.meter = b.meter"
        " AND x.start = b.start AND x.register = b.register) ORDER BY start, register"
    )
    return [_billed_from_db(r) for r in await tx.fetchall(sql, (meter, start, end))]


def _same(rated: RatedRow, billed: BilledRow) -> bool:
    return (rated.kwh, rated.band, rated.cost_p) == (billed.kwh, billed.band, billed.cost_p)


class BillStore:
    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    async def create(
        self, meter: str, start: datetime, end: datetime, bill_date: date, at: datetime,
        compose: Compose,
    ) -> tuple[int, dict[str, Any]]:  # fmt: skip
        """Make and store the bill for the slots in [start, end) (UTC bounds of local days)."""
        lo, hi = ts(start), ts(end)
        async with self.driver.transaction() as tx:
            await tx.lock(f"bills:{meter}")
            current = await _latest_rated(tx, meter, start, end)
            billed = await _latest_billed(tx, meter, lo, hi)
            # Billed slots outside the period re-rated since: their difference goes on this bill.
            outside = [*await _latest_billed(tx, meter, "", lo),
                       *await _latest_billed(tx, meter, hi, "~")]  # fmt: skip
            if outside:
                first = min(b.start for b in outside)
                last = max(b.start for b in outside).replace(second=1)
                rated = {
                    (r.start, r.register): r
                    for r in await _latest_rated(tx, meter, first, last)
                    if not start <= r.start < end
                }
                for b in outside:
                    now = rated.get((b.start, b.register))
                    if now is not None and not _same(now, b):
                        current.append(now)
                        billed.append(b)
            doc = compose(BillInputs(current, billed if billed else None))
            row = await tx.fetchone(
                "INSERT INTO bills (meter, period_from, period_to, bill_date, created_at, "
                "payload) VALUES (?,?,?,?,?,?) RETURNING id",
                (meter, doc["from"], doc["to"], bill_date.isoformat(), ts(at), json.dumps(doc)),
            )
            assert row is not None
            bill_id = int(row[0])
            await tx.executemany(
                f"INSERT INTO billed_slots (bill_id, {BILLED_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(bill_id, r.meter, ts(r.start), r.register, r.settlement_date,
                  r.settlement_period, str(r.kwh), r.band, str(r.unit_rate_p), str(r.cost_p))
                 for r in current],
            )  # fmt: skip
        return bill_id, doc

    async def list(self, meter: str) -> list[dict[str, Any]]:
        """The meter's bills, oldest first: id, period, dates and the totals."""
        async with self.driver.reader() as tx:
            rows = await tx.fetchall(
                "SELECT id, period_from, period_to, bill_date, created_at, payload FROM bills "
                "WHERE meter = ? ORDER BY id",
                (meter,),
            )
        out = []
        for r in rows:
            doc = json.loads(r[5])
            totals = ("account_type", "charges_p", "rebill", "written_off_p", "billable_p")
            out.append({"id": int(r[0]), "from": r[1], "to": r[2], "bill_date": r[3],
                        "created_at": r[4]} | {k: doc.get(k) for k in totals})  # fmt: skip
        return out

    async def get(self, meter: str, bill_id: int) -> dict[str, Any] | None:
        async with self.driver.reader() as tx:
            row = await tx.fetchone(
                "SELECT payload FROM bills WHERE meter = ? AND id = ?", (meter, bill_id)
            )
        return None if row is None else dict(json.loads(row[0]))

