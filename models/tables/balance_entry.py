"""Movements of the balance ledger: what each invoice used up, what lapsed (append-only)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created, IntPK


class BalanceEntry(Base):
    """``amount_minor`` is the non-negative magnitude consumed from (or, reversed, returned to) the line.

    Zero is allowed: a percent discount is used up by its first invoice even when it saved nothing.
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
    created_at: Mapped[Created]
