"""Gapless invoice numbers, given when an invoice is finalised for publication.

Stripe and Lago number an invoice when they finalise it; here that is the moment the relay is
about to publish its ``invoice.created`` event. Only committed invoices are numbered, in the
order of their events, by the one publishing relay, in a short transaction of its own before it
publishes them: no hole (a rolled-back invoice never got one), no
number given twice, and the counter row is not held by every transaction that issues an invoice
(it would serialise the writers; ``docs/benchmarks.md`` has the figures). The relay
puts the number into the event it publishes; the stored payload keeps ``"number": null``.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models.tables import bulk
from models.tables.invoice import Invoice
from models.tables.invoice_counter import InvoiceCounter
from models.tables.outbox import OutboxEvent
from models.tables.store import is_postgres, table_of, upsert


def series_of(prefix: str, issue_date: date) -> str:
    return f"{prefix}-{issue_date.year}"


def format_number(series: str, number: int) -> str:
    return f"{series}-{number:06d}"


def allocate(session: Session, series: str, count: int) -> list[str]:
    """Reserve ``count`` consecutive numbers of ``series`` and return them formatted."""
    if count <= 0:
        return []
    table = table_of(InvoiceCounter)
    statement = (
        upsert(session, table)
        .values(series=series, last_number=count)
        .on_conflict_do_update(
            index_elements=[table.c.series], set_={"last_number": table.c.last_number + count}
        )
        .returning(table.c.last_number)
    )
    last = int(session.execute(statement).scalar_one())
    return [format_number(series, number) for number in range(last - count + 1, last + 1)]


def number_pending(session: Session, prefix: str, limit: int) -> int:
    """Number the invoices of the next ``limit`` unsent events, in event order; return how many.

    The caller holds the publishing lock (one numbering relay at a time). One allocation per
    series (issue year), in series order, and one UPDATE of the invoices; the relay reads the
    numbers back when it publishes, so an event's stored payload is never rewritten.

    The statement is planned for the rows at hand (``force_custom_plan``): a plan cached while the
    tables were nearly empty (psycopg prepares a statement after five runs) scanned every invoice
    for every unsent event once a bill run had left a backlog of 100,000.
    """
    if is_postgres(session):
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    rows = session.execute(
        select(Invoice.id, Invoice.issue_date)
        .join(OutboxEvent, OutboxEvent.invoice_id == Invoice.id)
        .where(OutboxEvent.sent_at.is_(None), Invoice.number.is_(None))
        .order_by(OutboxEvent.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    series = [series_of(prefix, issue_date) for _, issue_date in rows]
    pools = {name: iter(allocate(session, name, count)) for name, count in sorted(Counter(series).items())}
    bulk.update_rows(session, table_of(Invoice), [
        {"invoice": invoice_id, "number": next(pools[name])} for (invoice_id, _), name in zip(rows, series, strict=True)
    ], key="invoice")
    return len(rows)
