"""Gapless invoice numbers: a counter row incremented inside the invoice's own transaction.

A rolled-back invoice rolls its number back too, so the sequence has no holes. The counter row
is locked from allocation to commit, so callers allocate last, just before inserting.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models.tables.invoice_counter import InvoiceCounter


def series_of(prefix: str, issue_date: date) -> str:
    return f"{prefix}-{issue_date.year}"


def format_number(series: str, number: int) -> str:
    return f"{series}-{number:06d}"


def allocate(session: Session, series: str, count: int) -> list[str]:
    """Reserve ``count`` consecutive numbers of ``series`` and return them formatted."""
    if count <= 0:
        return []
    table = InvoiceCounter.__table__
    assert isinstance(table, Table)
    dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(table)
        .values(series=series, last_number=count)
        .on_conflict_do_update(
            index_elements=[table.c.series], set_={"last_number": table.c.last_number + count}
        )
        .returning(table.c.last_number)
    )
    last = int(session.execute(statement).scalar_one())
    return [format_number(series, number) for number in range(last - count + 1, last + 1)]
