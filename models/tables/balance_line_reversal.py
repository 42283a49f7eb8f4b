"""Reversals held for approval: a ``balance_line.reverse`` above its producer's threshold (append-only)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created, IntPK


class BalanceLineReversal(Base):
    """A reversal that waits for a second identity, never updated or deleted.

    ``amount_minor`` is what it asked for: what was left of the line when it arrived. Nothing is
    taken from the line until it is approved (``reversal_decisions``); then a ``reversed`` balance
    entry with this row's ``message_id``, producer, author and reason takes what is left of the line
    at that moment, at most ``amount_minor``. Until then the line applies to invoices as before.
    On PostgreSQL a trigger rejects UPDATE and DELETE.
    """

    __tablename__ = "balance_line_reversals"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_minor"),)

    id: Mapped[IntPK]
    reversal_id: Mapped[str] = mapped_column(String(100), unique=True)
    balance_line_id: Mapped[int] = mapped_column(ForeignKey("balance_lines.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(64), ForeignKey("accounts.id"), index=True)
    amount_minor: Mapped[int]
    producer: Mapped[str] = mapped_column(String(100))
    author: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    message_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[Created]
