"""Gapless invoice numbering: one counter row per series."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base


class InvoiceCounter(Base):
    """``last_number`` is incremented by the relay when it numbers committed invoices.

    Only the one publishing relay increments it (``jobs.numbering.number_pending``), in the same
    transaction that writes the numbers onto the invoices, so a failed numbering rolls its
    increment back too and numbers have no holes (a sequence would leave them).
    """

    __tablename__ = "invoice_counters"
    __table_args__ = (CheckConstraint("last_number >= 0", name="last_number"),)

    series: Mapped[str] = mapped_column(String(40), primary_key=True, doc='e.g. "INV-2018"')
    last_number: Mapped[int]
