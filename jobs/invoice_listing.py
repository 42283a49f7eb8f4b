"""Invoices as issued, read back from the invoice tables (not from the events), in the event's shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs.invoice_json import JSONDict, balance_line, invoice_document, recurring_line
from models.tables.balance_line import BalanceLine
from models.tables.invoice import Invoice
from models.tables.invoice_line import CHARGE_KINDS, InvoiceLine
from models.tables.store import transaction


def invoice_documents(sessions: sessionmaker[Session], account_id: str | None, limit: int) -> list[JSONDict]:
    """The newest ``limit`` invoices (of one account, or all), oldest first, in the event's shape."""
    with transaction(sessions) as session:
        query = select(Invoice).order_by(Invoice.id.desc()).limit(limit)
        if account_id is not None:
            query = query.where(Invoice.account_id == account_id)
        return documents_of(session, list(reversed(session.scalars(query).all())))


def documents_of(session: Session, invoices: Sequence[Invoice]) -> list[JSONDict]:
    """Stored invoices with their lines, in the event's shape (numbers once the relay gave them)."""
    rows = session.execute(
        select(InvoiceLine, BalanceLine.line_id)
        .outerjoin(BalanceLine, BalanceLine.id == InvoiceLine.balance_line_id)
        .where(InvoiceLine.invoice_id.in_([invoice.id for invoice in invoices]))
        .order_by(InvoiceLine.invoice_id, InvoiceLine.position)
    ).all()
    currencies = {invoice.id: invoice.currency for invoice in invoices}
    lines: dict[int, list[JSONDict]] = {}
    for line, line_id in rows:
        lines.setdefault(line.invoice_id, []).append(_line(line, line_id, currencies[line.invoice_id]))
    return [
        invoice_document(
            number=i.number, account=i.account_id, issue_date=i.issue_date, currency=i.currency,
            lines=lines.get(i.id, []),
            totals=[("subtotal", i.subtotal_minor), ("discount", i.discount_minor), ("credit", i.credit_minor),
                    ("total", i.total_minor)],
        )
        for i in invoices
    ]


def _line(line: Any, line_id: str | None, currency: str) -> JSONDict:
    if line.kind in CHARGE_KINDS:
        return recurring_line(line.plan, line.period_start, line.period_end, line.days, line.period_days,
                              line.amount_minor, currency, line.kind)
    return balance_line(line.kind, line_id or "?", line.amount_minor, currency)
