"""One line of an invoice: a recurring charge for a period, or an applied balance line."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, ForeignKey, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, IntPK

LINE_KINDS = ("recurring", "credit", "gift", "referral", "discount", "adjustment")


class InvoiceLine(Base):
    """``UNIQUE(subscription_id, period_start)`` makes each recurring charge billable once.

    Balance-line applications leave both columns NULL, and NULLs never collide (on PostgreSQL and
    SQLite alike), so only recurring lines are constrained; the ``refs`` check guarantees a
    recurring line cannot dodge the key with a NULL. ``period_end`` is the INCLUSIVE last day, as
    invoices print it. ``amount_minor`` is signed (credits and discounts are negative).
    """

    __tablename__ = "invoice_lines"
    __table_args__ = (
        UniqueConstraint("subscription_id", "period_start"),
        UniqueConstraint("invoice_id", "position"),
        CheckConstraint(
            "kind IN ('recurring', 'credit', 'gift', 'referral', 'discount', 'adjustment')",
            name="kind",
        ),
        CheckConstraint(
            "(kind = 'recurring' AND subscription_id IS NOT NULL AND period_start IS NOT NULL"
            " AND period_end IS NOT NULL AND balance_line_id IS NULL)"
            " OR (kind <> 'recurring' AND balance_line_id IS NOT NULL)",
            name="refs",
        ),
        CheckConstraint("period_end >= period_start", name="period"),
    )

    id: Mapped[IntPK]
    # Indexed through uq_invoice_lines_invoice_id_position, whose leading column it is.
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    position: Mapped[int] = mapped_column(SmallInteger)
    kind: Mapped[str] = mapped_column(String(16))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    plan: Mapped[str | None] = mapped_column(String(100))
    period_start: Mapped[date | None]
    period_end: Mapped[date | None]
    days: Mapped[int | None] = mapped_column(SmallInteger)
    period_days: Mapped[int | None] = mapped_column(SmallInteger)
    amount_minor: Mapped[int]
    balance_line_id: Mapped[int | None] = mapped_column(ForeignKey("balance_lines.id"), index=True)
