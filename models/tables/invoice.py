"""An issued invoice: dated, totalled, numbered on publication; its lines are in ``invoice_lines``."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created, IntPK


class Invoice(Base):
    """Totals in minor units; ``total_minor`` never goes below zero (unused credit carries forward).

    ``number`` is NULL from the issuing commit until the relay numbers the invoice, just before it
    publishes its ``invoice.created`` event (``jobs.numbering.number_pending``): gapless, each once.
    """

    __tablename__ = "invoices"
    __table_args__ = (CheckConstraint("total_minor >= 0", name="total_minor"),)

    id: Mapped[IntPK]
    number: Mapped[str | None] = mapped_column(String(40), unique=True)
    account_id: Mapped[str] = mapped_column(String(64), ForeignKey("accounts.id"), index=True)
    issue_date: Mapped[date]
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int]
    discount_minor: Mapped[int]
    credit_minor: Mapped[int]
    total_minor: Mapped[int]
    bill_run_id: Mapped[int | None] = mapped_column(ForeignKey("bill_runs.id"))
    created_at: Mapped[Created]
