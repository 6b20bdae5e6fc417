"""The billing role's operations on the facade: bills made from the stored latest rated
versions (stored with the lines they charged), and the Direct Debit check of an account.

Request documents are checked here (errors name the field); the rules are billing/'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from billing import (
    ACCOUNT_TYPES,
    BillingInputError,
    BillOptions,
    DdInput,
    add_months,
    check,
    make_bill,
    parse_date,
    parse_pence,
    parse_weeks,
)
from core.clock import Clock
from core.fields import check_keys
from core.timegrid import LONDON, day_bounds
from flexd.control.preferences import InputError
from flexd.control.runtime import SiteRuntime
from flexd.storage import RatedRow, Storage
from flexd.storage.bills import BilledRow, BillInputs, BillStore
from rating.model import RatedSlot
from rating.tariff import load_tariff

BILL_KEYS = ("from", "to", "bill_date", "account_type", "customer_caused", "balance_p")
DD_KEYS = ("today", "balance_p", "payment_p", "last_change", "supply_start", "last_reading",
           "target_weeks", "meter")  # fmt: skip


def _slot(r: RatedRow | BilledRow) -> RatedSlot:
    return RatedSlot(r.meter, r.start, date.fromisoformat(r.settlement_date),
                     r.settlement_period, r.register, r.kwh, r.band, r.unit_rate_p,
                     r.cost_p)  # fmt: skip


def _input_error(exc: BillingInputError) -> InputError:
    return InputError(exc.field or "body", exc.reason)


@dataclass(frozen=True, slots=True)
class BillRequest:
    period_from: date
    period_to: date
    bill_date: date
    options: BillOptions


def parse_bill_request(body: Any) -> BillRequest:
    """The POST body: from, to, bill_date (local dates), and the options of ``flexd bill``."""
    if not isinstance(body, Mapping):
        raise InputError("body", "must be a JSON object")
    try:
        check_keys(body, BILL_KEYS, "")
        for key in ("from", "to", "bill_date"):
            if key not in body:
                raise BillingInputError(key, "is required")
        account_type = body.get("account_type", "domestic")
        if account_type not in ACCOUNT_TYPES:
            raise BillingInputError("account_type", "must be domestic or business")
        caused = body.get("customer_caused", False)
        if not isinstance(caused, bool):
            raise BillingInputError("customer_caused", "must be true or false")
        balance = body.get("balance_p")
        return BillRequest(
            parse_date(body["from"], "from"), parse_date(body["to"], "to"),
            parse_date(body["bill_date"], "bill_date"),
            BillOptions(account_type, caused,
                        None if balance is None else parse_pence(balance, "balance_p")),
        )  # fmt: skip
    except BillingInputError as exc:
        raise _input_error(exc) from None
    except ValueError as exc:  # check_keys: an unknown key
        field = getattr(exc, "field", None) or "body"
        raise InputError(field, getattr(exc, "reason", str(exc))) from None


class BillDesk:
    def __init__(self, storage: Storage, clock: Clock, sites: Mapping[str, SiteRuntime]) -> None:
        self.store = BillStore(storage.driver)
        self.storage = storage
        self.clock = clock
        self.sites = sites

    async def create(self, meter: str, body: Any) -> tuple[int, dict[str, Any]]:
        req = parse_bill_request(body)

        def compose(inputs: BillInputs) -> dict[str, Any]:
            billed = None if inputs.billed is None else [_slot(b) for b in inputs.billed]
            bill = make_bill(req.period_from, req.period_to, req.bill_date,
                             [_slot(r) for r in inputs.current], billed, req.options)  # fmt: skip
            return bill.to_json()

        start, end = day_bounds(req.period_from)[0], day_bounds(req.period_to)[0]
        try:
            bill_id, doc = await self.store.create(
                meter, start, end, req.bill_date, self.clock.now(), compose
            )
        except BillingInputError as exc:
            raise _input_error(exc) from None
        return bill_id, {"id": bill_id, **doc}

    async def list(self, meter: str) -> list[dict[str, Any]]:
        return await self.store.list(meter)

    async def get(self, meter: str, bill_id: str) -> dict[str, Any] | None:
        if not bill_id.isascii() or not bill_id.isdigit() or len(bill_id) > 18:
            return None
        doc = await self.store.get(meter, int(bill_id))
        return None if doc is None else {"id": int(bill_id), **doc}

    def account_site(self, account: str, meter: str | None) -> SiteRuntime | None:
        """The account's site (its one meter, or ``meter`` among several); None: not found."""
        sites = [s for s in self.sites.values() if s.config.account == account]
        if meter is not None:
            sites = [s for s in sites if s.config.meter == meter]
        if len(sites) > 1:
            raise InputError("meter", "the account has several meters: give meter=")
        return sites[0] if sites else None

    async def direct_debit(self, site: SiteRuntime, query: Mapping[str, str]) -> dict[str, Any]:
        """dd.json for the site's meter: its stored rated history of the 12 months before
        ``today`` (default: the local date now) at the site's tariff."""
        try:
            check_keys(query, DD_KEYS, "")
            today = (parse_date(query["today"], "today") if "today" in query
                     else self.clock.now().astimezone(LONDON).date())  # fmt: skip
            for key in ("balance_p", "payment_p"):
                if key not in query:
                    raise BillingInputError(key, "is required")
            weeks = parse_weeks(query.get("target_weeks", "1"), "target_weeks")
            inp = DdInput(
                today=today,
                balance_p=parse_pence(query["balance_p"], "balance_p"),
                payment_p=parse_pence(query["payment_p"], "payment_p", minimum=0),
                last_change=_opt_date(query, "last_change"),
                supply_start=_opt_date(query, "supply_start"),
                last_reading=_opt_date(query, "last_reading"),
                target_weeks=weeks,
            )
            start = day_bounds(add_months(today, -12))[0]
            end = day_bounds(today)[0]
            history = await self.storage.latest_rated(site.config.meter, start, end)
            tariff = load_tariff(site.config.tariff)
            doc = check([_slot(r) for r in history], tariff, inp)
        except BillingInputError as exc:
            raise _input_error(exc) from None
        except ValueError as exc:  # check_keys: an unknown parameter
            raise InputError(getattr(exc, "field", None) or "query",
                             getattr(exc, "reason", str(exc))) from None  # fmt: skip
        return {"account": site.config.account, "meter": site.config.meter,
                "today": today.isoformat(), **doc}  # fmt: skip


def _opt_date(query: Mapping[str, str], key: str) -> date | None:
    return parse_date(query[key], key) if key in query else None


__all__ = ["BillDesk", "parse_bill_request"]
