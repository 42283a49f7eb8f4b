"""One line of an invoice: a recurring charge for a period, or an applied balance line."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.billing.balance import BALANCE_KINDS
from models.tables.base import Base, IntPK

CHARGE_KINDS = ("recurring", "proration")
"""Lines of a subscription's period (a charge, or a correction of one)."""
LINE_KINDS = (*CHARGE_KINDS, *BALANCE_KINDS)


class InvoiceLine(Base):
    """A unique index on ``(subscription_id, period_start)`` of recurring lines bills each range once.

    ``period_start`` .. ``period_end`` is the range the line is about (INCLUSIVE last day, as
    invoices print it); ``billing_period_start`` .. ``billing_period_end`` the billed period it
    belongs to (inclusive too; for a stub, ``period_days`` is its full cycle), and ``rate_minor`` the
    signed per-period price it bills that range at: with them the generator reads back what each
    period was billed. Proration lines correct billed ranges and may repeat one (a change, then its
    reversal), so only recurring lines are unique; the ``refs`` check guarantees a charge line
    cannot dodge the key with a NULL. ``amount_minor`` is signed (credits, discounts and the old
    side of a correction are negative).
    """

    __tablename__ = "invoice_lines"
    __table_args__ = (
        Index("ix_invoice_lines_recurring_range", "subscription_id", "period_start", unique=True,
              postgresql_where=text("kind = 'recurring'"), sqlite_where=text("kind = 'recurring'")),
        UniqueConstraint("invoice_id", "position"),
        CheckConstraint(f"kind IN ({', '.join(repr(kind) for kind in LINE_KINDS)})", name="kind"),
        CheckConstraint(
            "(kind IN ('recurring', 'proration') AND subscription_id IS NOT NULL AND period_start IS NOT NULL"
            " AND period_end IS NOT NULL AND balance_line_id IS NULL)"
            " OR (kind NOT IN ('recurring', 'proration') AND balance_line_id IS NOT NULL)",
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
    billing_period_start: Mapped[date | None]
    billing_period_end: Mapped[date | None]
    rate_minor: Mapped[int | None]
    balance_line_id: Mapped[int | None] = mapped_column(ForeignKey("balance_lines.id"), index=True)
