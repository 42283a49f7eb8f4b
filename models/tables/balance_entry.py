"""Movements of the balance ledger: what each invoice used up, what lapsed (append-only)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created, IntPK


class BalanceEntry(Base):
    """``amount_minor`` is the non-negative magnitude consumed from the line: applied to an invoice,
    lapsed at expiry, or cancelled by a reversal.

    Zero is allowed: a percent discount is used up by its first invoice even when it saved nothing.
    A reversal records who asked for it and why (``producer``, ``author``, ``reason``, and its
    ``message_id``); applications and lapses are the system's own and leave them empty.
    """

    __tablename__ = "balance_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('applied', 'lapsed', 'reversed')", name="kind"),
        CheckConstraint("amount_minor >= 0", name="amount_minor"),
    )

    id: Mapped[IntPK]
    balance_line_id: Mapped[int] = mapped_column(ForeignKey("balance_lines.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int]
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    invoice_line_id: Mapped[int | None] = mapped_column(ForeignKey("invoice_lines.id"))
    message_id: Mapped[str | None] = mapped_column(String(64))
    producer: Mapped[str | None] = mapped_column(String(100))
    author: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[Created]
