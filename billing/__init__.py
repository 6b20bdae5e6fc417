"""Billing from rated slots: statements, invoices and credit notes, re-bills with the 12-month
backbilling rule, and the Direct Debit health check (pure: no clock, no I/O)."""

from billing.direct_debit import DdInput, check
from billing.model import (
    ACCOUNT_TYPES,
    Bill,
    BillingInputError,
    BillLine,
    BillOptions,
    Document,
    Item,
    add_months,
    parse_date,
    parse_pence,
    parse_weeks,
    pence,
)
from billing.rebill import backbilling_cutoff, make_bill
from billing.statement import select

__all__ = [
    "ACCOUNT_TYPES",
    "Bill",
    "BillLine",
    "BillOptions",
    "BillingInputError",
    "DdInput",
    "Document",
    "Item",
    "add_months",
    "backbilling_cutoff",
    "check",
    "make_bill",
    "parse_date",
    "parse_pence",
    "parse_weeks",
    "pence",
    "select",
]
