"""Billing one account on one date: compose with the pure core, persist in the caller's transaction.

Onboarding and bill runs share this path, so a catch-up invoice and a recurring one are the same
rows, the same numbers and the same events.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from jobs import numbering
from jobs.invoice_json import JSONDict, draft_document
from models.billing.balance import Movement, MovementKind, OpenBalanceLine
from models.billing.composition import Composition, InvoiceDraft, compose
from models.tables.account import Account
from models.tables.balance_entry import BalanceEntry
from models.tables.invoice import Invoice
from models.tables.invoice_line import InvoiceLine
from models.tables.mapping import load_subscriptions, open_balance_lines, subscription_terms
from models.tables.outbox import OutboxEvent, new_event_id
from models.tables.subscription import Subscription
from worker.metrics import INVOICE_AMOUNT, INVOICES
from worker.settings import Settings

INVOICE_CREATED = "invoice.created"


@dataclass(frozen=True)
class IssuedInvoice:
    id: int
    number: str
    total_minor: int
    document: JSONDict


def bill_account(
    session: Session,
    account: Account,
    as_of: date,
    *,
    settings: Settings,
    now: datetime,
    onboarding: bool = False,
    bill_run_id: int | None = None,
) -> list[IssuedInvoice]:
    """Issue every invoice the account is due on its local date ``as_of``; return them."""
    subscriptions = load_subscriptions(session, account.id)
    balance = open_balance_lines(session, account.id)
    combine = settings.combine_invoices if account.combine_invoices is None else account.combine_invoices
    composition = compose(
        [subscription_terms(row) for row in subscriptions],
        balance,
        as_of,
        combine=combine,
        onboarding=onboarding,
        hold_until=account.hold_until,
        max_catch_up=settings.max_catch_up_periods,
    )
    line_ids = {line.line_id: line.sequence for line in balance}
    issued = _insert_invoices(session, account, composition.invoices, line_ids, settings, now, bill_run_id)
    _insert_lapses(session, composition.lapses, line_ids, now)
    _advance_subscriptions(subscriptions, composition)
    if account.hold_until != composition.hold_until:
        account.hold_until = composition.hold_until
    for invoice in issued:
        INVOICES.labels(trigger="bill_run" if bill_run_id else "onboarding").inc()
        INVOICE_AMOUNT.labels(currency=account.currency).inc(invoice.total_minor)
    return issued


def _insert_invoices(
    session: Session,
    account: Account,
    drafts: tuple[InvoiceDraft, ...],
    line_ids: dict[str, int],
    settings: Settings,
    now: datetime,
    bill_run_id: int | None,
) -> list[IssuedInvoice]:
    if not drafts:
        return []
    numbers = numbering.allocate(session, numbering.series_of(settings.invoice_prefix, drafts[0].issue_date),
                                 len(drafts))
    issued: list[IssuedInvoice] = []
    for draft, number in zip(drafts, numbers, strict=True):
        document = draft_document(draft, number=number, account=account.id, currency=account.currency)
        invoice_id = session.execute(
            insert(Invoice).returning(Invoice.id),
            [{
                "number": number, "account_id": account.id, "issue_date": draft.issue_date,
                "currency": account.currency, "subtotal_minor": draft.subtotal_minor,
                "discount_minor": draft.discount_minor, "credit_minor": draft.credit_minor,
                "total_minor": draft.total_minor, "bill_run_id": bill_run_id, "created_at": now,
            }],
        ).scalar_one()
        _insert_lines(session, invoice_id, draft, line_ids, now)
        session.execute(insert(OutboxEvent), [{
            "event_id": new_event_id(), "account_id": account.id, "event_type": INVOICE_CREATED,
            "payload": json.dumps(document), "created_at": now,
        }])
        issued.append(IssuedInvoice(invoice_id, number, draft.total_minor, document))
    return issued


def _insert_lines(
    session: Session, invoice_id: int, draft: InvoiceDraft, line_ids: dict[str, int], now: datetime
) -> None:
    rows: list[dict[str, Any]] = [
        {
            "invoice_id": invoice_id, "position": position, "kind": "recurring",
            "subscription_id": int(charge.subscription_key), "plan": charge.plan,
            "period_start": charge.period.start, "period_end": charge.period.last_day,
            "days": charge.period.days, "period_days": charge.period.cycle_days,
            "amount_minor": charge.amount_minor, "balance_line_id": None,
        }
        for position, charge in enumerate(draft.charges)
    ]
    applied = [m for m in draft.balance if m.invoice_amount_minor]
    rows += [
        {
            "invoice_id": invoice_id, "position": len(draft.charges) + offset, "kind": str(m.kind),
            "subscription_id": None, "plan": None, "period_start": None, "period_end": None,
            "days": None, "period_days": None, "amount_minor": m.invoice_amount_minor,
            "balance_line_id": line_ids[m.line_id],
        }
        for offset, m in enumerate(applied)
    ]
    ids = session.execute(
        insert(InvoiceLine).returning(InvoiceLine.id, sort_by_parameter_order=True), rows
    ).scalars().all()
    entries = [
        {
            "balance_line_id": line_ids[m.line_id], "kind": MovementKind.APPLIED.value,
            "amount_minor": m.consumed_minor, "invoice_id": invoice_id, "invoice_line_id": line_id,
            "message_id": None, "created_at": now,
        }
        for m, line_id in zip(applied, ids[len(draft.charges):], strict=True)
    ]
    if entries:
        session.execute(insert(BalanceEntry), entries)


def _insert_lapses(session: Session, lapses: tuple[Movement, ...], line_ids: dict[str, int], now: datetime) -> None:
    if lapses:
        session.execute(insert(BalanceEntry), [
            {
                "balance_line_id": line_ids[m.line_id], "kind": MovementKind.LAPSED.value,
                "amount_minor": m.consumed_minor, "invoice_id": None, "invoice_line_id": None,
                "message_id": None, "created_at": now,
            }
            for m in lapses
        ])


def _advance_subscriptions(rows: Sequence[Subscription], composition: Composition) -> None:
    for row in rows:
        key = str(row.id)
        row.billed_until = composition.billed_until.get(key)
        row.next_bill_date = composition.next_bill_dates.get(key)


def remaining_credit(lines: list[OpenBalanceLine], as_of: date) -> int:
    """Unused customer credit still usable on ``as_of`` (expired credit is not counted)."""
    return sum(
        abs(line.remaining_minor)
        for line in lines
        if line.is_credit and (line.expires_on is None or line.expires_on >= as_of)
    )
