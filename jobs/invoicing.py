"""Storing bills: invoices, their lines, balance movements and events, in the caller's transaction.

Onboarding bills one account and a bill-run batch bills hundreds; both go through ``write_bills``
(onboarding is its one-account case), so a catch-up invoice and a recurring one are the same
rows, the same numbers and the same events. The writer issues a fixed number of bulk Core
statements per batch, whatever its size: the subscriptions' new state, lifted holds, lapses, the
invoices, unnumbered (RETURNING their ids in parameter order), their lines, the balance entries
those lines made, and one outbox row per invoice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from jobs.bills import AccountBill
from jobs.invoice_json import JSONDict, draft_document
from jobs.metrics import INVOICE_AMOUNT, INVOICES
from models.billing.balance import Movement, MovementKind
from models.billing.composition import InvoiceDraft
from models.billing.money import format_amount
from models.tables import bulk
from models.tables.account import Account
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.invoice import Invoice
from models.tables.invoice_line import InvoiceLine
from models.tables.outbox import OutboxEvent, new_event_id
from models.tables.store import table_of
from models.tables.subscription import Subscription

INVOICE_CREATED = "invoice.created"
SYSTEM = "system"
"""Author and producer of the credit lines the worker creates itself."""


@dataclass(frozen=True)
class IssuedInvoice:
    """An invoice as written: its number comes when the relay publishes it."""

    id: int
    total_minor: int
    document: JSONDict


def write_bills(
    session: Session, bills: Sequence[AccountBill], *, now: datetime, bill_run_id: int | None
) -> dict[str, list[IssuedInvoice]]:
    """Store the bills in bulk; return each account's issued invoices.

    The invoices are stored without a number, their events with the invoice they announce: the
    relay numbers them just before publishing (``jobs.numbering``), so no lock is shared by the
    writers of different accounts.
    """
    _advance_subscriptions(session, bills)
    _update_holds(session, bills)
    _insert_lapses(session, bills, now)
    batch = _Batch.of(bills, now, bill_run_id)
    if not batch.drafts:
        return {}
    invoice_ids = bulk.insert_columns(session, table_of(Invoice), batch.invoice_columns, return_ids=True)
    line_ids = bulk.insert_columns(session, table_of(InvoiceLine), batch.lines(invoice_ids), return_ids=batch.applies)
    bulk.insert_rows(session, table_of(BalanceEntry), batch.entries(invoice_ids, line_ids))
    bulk.insert_columns(session, table_of(OutboxEvent), batch.events(invoice_ids))
    bulk.insert_rows(session, table_of(BalanceLine), batch.system_credits(invoice_ids, now))
    _count_metrics(batch.drafts, "bill_run" if bill_run_id else "onboarding")
    return batch.issued(invoice_ids)

Columns = dict[str, list[Any]]


@dataclass
class _Batch:
    """A batch's rows, column by column; only the ids the inserts return are filled in later."""

    drafts: list[tuple[AccountBill, InvoiceDraft]]
    documents: list[JSONDict]
    invoice_columns: Columns
    line_columns: Columns
    line_invoices: list[int]
    entry_rows: list[tuple[int, int, dict[str, Any]]]
    event_columns: Columns

    @classmethod
    def of(cls, bills: Sequence[AccountBill], now: datetime, bill_run_id: int | None) -> _Batch:
        drafts = [(bill, draft) for bill in bills for draft in bill.invoices]
        documents = [draft_document(draft, number=None, account=bill.account_id, currency=bill.currency)
                     for bill, draft in drafts]
        payloads = [json.dumps(document) for document in documents]
        line_rows: list[dict[str, Any]] = []
        line_invoices: list[int] = []
        entry_rows: list[tuple[int, int, dict[str, Any]]] = []
        for index, (bill, draft) in enumerate(drafts):
            first_balance_line = len(line_rows) + len(draft.charges)
            rows = _line_rows(draft, bill.line_ids)
            line_rows += rows
            line_invoices += [index] * len(rows)
            entry_rows += [
                (index, first_balance_line + offset,
                 {"balance_line_id": bill.line_ids[m.line_id], "kind": MovementKind.APPLIED.value,
                  "amount_minor": m.consumed_minor, "message_id": None, "created_at": now})
                for offset, m in enumerate(_applied(draft))
            ]
        return cls(
            drafts=drafts,
            documents=documents,
            invoice_columns=_invoice_columns(drafts, now, bill_run_id),
            line_columns={name: [row[name] for row in line_rows] for name in LINE_COLUMNS},
            line_invoices=line_invoices,
            entry_rows=entry_rows,
            event_columns={"event_id": [new_event_id() for _ in drafts],
                           "account_id": [bill.account_id for bill, _ in drafts],
                           "event_type": [INVOICE_CREATED] * len(drafts), "created_at": [now] * len(drafts),
                           "payload": payloads},
        )

    @property
    def applies(self) -> bool:
        """Whether balance lines were applied: only then are the invoice lines' ids needed."""
        return bool(self.entry_rows)

    def lines(self, invoice_ids: Sequence[int]) -> Columns:
        return {**self.line_columns, "invoice_id": [invoice_ids[index] for index in self.line_invoices]}

    def entries(self, invoice_ids: Sequence[int], line_ids: Sequence[int]) -> list[dict[str, Any]]:
        return [{**row, "invoice_id": invoice_ids[index], "invoice_line_id": line_ids[line]}
                for index, line, row in self.entry_rows]

    def events(self, invoice_ids: Sequence[int]) -> Columns:
        return {**self.event_columns, "invoice_id": list(invoice_ids)}

    def system_credits(self, invoice_ids: Sequence[int], now: datetime) -> list[dict[str, Any]]:
        """A ``credit`` line by the system for each invoice whose lines summed below zero (issued at 0)."""
        return [
            {"line_id": f"system-credit:{invoice_id}", "account_id": bill.account_id, "kind": "credit",
             "amount_minor": draft.system_credit_minor, "percent": None, "currency": bill.currency,
             "label": "credit from an invoice below zero",
             "reason": f"invoice {invoice_id} of {draft.issue_date} summed to "
                       f"{format_amount(-draft.system_credit_minor, bill.currency)}: issued at 0, the rest is credit",
             "author": SYSTEM, "producer": SYSTEM, "message_id": event_id, "effective_date": draft.issue_date,
             "expires_on": None, "requires_approval": False, "body_hash": "0" * 64, "created_at": now}
            for (bill, draft), invoice_id, event_id in zip(self.drafts, invoice_ids, self.event_columns["event_id"],
                                                             strict=True)
            if draft.system_credit_minor > 0
        ]

    def issued(self, invoice_ids: Sequence[int]) -> dict[str, list[IssuedInvoice]]:
        found: dict[str, list[IssuedInvoice]] = {}
        for (bill, draft), invoice_id, document in zip(self.drafts, invoice_ids, self.documents, strict=True):
            found.setdefault(bill.account_id, []).append(IssuedInvoice(invoice_id, draft.total_minor, document))
        return found


LINE_COLUMNS = ("position", "kind", "subscription_id", "plan", "period_start", "period_end", "days", "period_days",
                "amount_minor", "billing_period_start", "billing_period_end", "rate_minor", "balance_line_id")


def _invoice_columns(drafts: Sequence[tuple[AccountBill, InvoiceDraft]], now: datetime,
                     bill_run_id: int | None) -> Columns:
    totals = [(draft.subtotal_minor, draft.discount_minor, draft.credit_minor, draft.total_minor)
              for _, draft in drafts]
    return {
        "account_id": [bill.account_id for bill, _ in drafts],
        "issue_date": [draft.issue_date for _, draft in drafts],
        "currency": [bill.currency for bill, _ in drafts],
        "subtotal_minor": [t[0] for t in totals], "discount_minor": [t[1] for t in totals],
        "credit_minor": [t[2] for t in totals], "total_minor": [t[3] for t in totals],
        "bill_run_id": [bill_run_id] * len(drafts), "created_at": [now] * len(drafts),
    }


def _advance_subscriptions(session: Session, bills: Iterable[AccountBill]) -> None:
    """One UPDATE by primary key for every subscription whose billing state moved.

    A subscription without pending corrections needs no recheck and no settlement date any more; a
    finished one (ended, settled) has no next bill date, so no bill run selects it again.
    """
    rows = []
    for bill in bills:
        composition = bill.composition
        for state in bill.subscriptions:
            key = str(state.id)
            pending = key in composition.corrections_pending
            new = (composition.billed_until.get(key), composition.next_bill_dates.get(key),
                   state.recheck_from if pending else None, state.settle_on if pending else None)
            if new != (state.billed_until, state.next_bill_date, state.recheck_from, state.settle_on):
                rows.append({"subscription": state.id, "billed_until": new[0], "next_bill_date": new[1],
                             "recheck_from": new[2], "settle_on": new[3]})
    bulk.update_rows(session, table_of(Subscription), rows, key="subscription")


def _update_holds(session: Session, bills: Iterable[AccountBill]) -> None:
    rows = [{"account": bill.account_id, "hold_until": bill.composition.hold_until}
            for bill in bills if bill.composition.hold_until != bill.hold_until]
    bulk.update_rows(session, table_of(Account), rows, key="account")


def _insert_lapses(session: Session, bills: Iterable[AccountBill], now: datetime) -> None:
    rows = [
        {"balance_line_id": bill.line_ids[m.line_id], "kind": MovementKind.LAPSED.value,
         "amount_minor": m.consumed_minor, "invoice_id": None, "invoice_line_id": None,
         "message_id": None, "created_at": now}
        for bill in bills for m in bill.composition.lapses
    ]
    bulk.insert_rows(session, table_of(BalanceEntry), rows)


def _applied(draft: InvoiceDraft) -> list[Movement]:
    """The balance movements that print as invoice lines (and so leave an applied entry)."""
    return [m for m in draft.balance if m.invoice_amount_minor]


def _line_rows(draft: InvoiceDraft, line_ids: dict[str, int]) -> list[dict[str, Any]]:
    """Recurring lines in date order, then one line per applied balance line (``invoice_id`` comes later)."""
    rows: list[dict[str, Any]] = [
        {"position": position, "kind": str(charge.kind),
         "subscription_id": int(charge.subscription_key), "plan": charge.plan,
         "period_start": charge.start, "period_end": charge.last_day,
         "days": charge.days, "period_days": charge.period_days,
         "amount_minor": charge.amount_minor, "billing_period_start": charge.period.start,
         "billing_period_end": charge.period.last_day, "rate_minor": charge.rate_minor, "balance_line_id": None}
        for position, charge in enumerate(draft.charges)
    ]
    rows += [
        {"position": len(draft.charges) + offset, "kind": str(m.kind),
         "subscription_id": None, "plan": None, "period_start": None, "period_end": None,
         "days": None, "period_days": None, "amount_minor": m.invoice_amount_minor,
         "billing_period_start": None, "billing_period_end": None, "rate_minor": None,
         "balance_line_id": line_ids[m.line_id]}
        for offset, m in enumerate(_applied(draft))
    ]
    return rows


def _count_metrics(drafts: Sequence[tuple[AccountBill, InvoiceDraft]], trigger: str) -> None:
    INVOICES.labels(trigger=trigger).inc(len(drafts))
    amounts: Counter[str] = Counter()
    for bill, draft in drafts:
        amounts[bill.currency] += draft.total_minor
    for currency, amount in amounts.items():
        INVOICE_AMOUNT.labels(currency=currency).inc(amount)
