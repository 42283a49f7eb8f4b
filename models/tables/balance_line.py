"""The balance ledger's lines: credits, gifts, referrals, discounts and adjustments (append-only)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.billing.balance import BALANCE_KINDS
from models.tables.base import Base, Created, IntPK


class BalanceLine(Base):
    """A producer-given line (``line_id`` is its idempotency key), never updated or deleted.

    What is left of a line is derived from its ``balance_entries``, so the ledger reconciles:
    available = amount - applied - lapsed - reversed. On PostgreSQL a trigger rejects UPDATE and
    DELETE. ``amount_minor`` is positive except for adjustments (signed, non-zero); a discount may
    carry a ``percent`` (0 < percent <= 100) instead. (producer, created_at) is indexed for the
    producer's rate limit.
    """

    __tablename__ = "balance_lines"
    __table_args__ = (
        CheckConstraint(f"kind IN ({', '.join(repr(kind) for kind in BALANCE_KINDS)})", name="kind"),
        CheckConstraint("(amount_minor IS NULL) <> (percent IS NULL)", name="amount_xor_percent"),
        CheckConstraint(
            "amount_minor IS NULL OR amount_minor > 0 OR (kind = 'adjustment' AND amount_minor <> 0)",
            name="amount_sign",
        ),
        CheckConstraint(
            "percent IS NULL OR (kind = 'discount' AND percent > 0 AND percent <= 100)",
            name="percent",
        ),
        CheckConstraint("expires_on IS NULL OR expires_on >= effective_date", name="expiry"),
        Index("ix_balance_lines_producer_created_at", "producer", "created_at"),
    )

    id: Mapped[IntPK]
    line_id: Mapped[str] = mapped_column(String(100), unique=True)
    account_id: Mapped[str] = mapped_column(String(64), ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int | None]
    percent: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(3))
    label: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    author: Mapped[str] = mapped_column(String(200))
    producer: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[str] = mapped_column(String(64))
    effective_date: Mapped[date]
    expires_on: Mapped[date | None]
    requires_approval: Mapped[bool]
    body_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[Created]
