"""The audit's record of refused balance-line and onboarding messages, by account (append-only)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created, IntPK


class BalanceRejection(Base):
    """One refused line (or line-less onboarding) of an account, beside its ``rejections`` row.

    ``rejections`` is the operators' dead-letter queue: redacted, replayable, read widely. This is
    finance's trail: who tried to move an account's balance and was refused, looked up by an
    indexed account id (never by searching payload text). What the sender claimed is kept only as
    far as it can be trusted: ``author`` only when the signature was valid (``authenticated``), the
    kind only when it is one of ours, the amount only when it was a valid amount. On PostgreSQL a
    trigger rejects UPDATE and DELETE, as on the ledger.
    """

    __tablename__ = "balance_rejections"

    id: Mapped[IntPK]
    rejection_id: Mapped[int] = mapped_column(ForeignKey("rejections.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    message_type: Mapped[str | None] = mapped_column(String(40))
    message_id: Mapped[str | None] = mapped_column(String(64))
    line_id: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str | None] = mapped_column(String(16))
    amount_minor: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    producer: Mapped[str | None] = mapped_column(String(100))
    authenticated: Mapped[bool]
    author: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[Created]
