"""A priced plan on an account and how far it has been billed."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, IntPK


class Subscription(Base):
    """One subscription of an account, in the order it was added.

    ``key`` is its id within the account (default: its plan). ``plan``, ``amount_minor`` and
    ``bill_day`` are what it started with; its changes since are rows of ``subscription_changes``
    (``has_changes``), replayed into a price timeline and a schedule of periods. ``billed_until``
    is the exclusive end of the last billed period; ``next_bill_date`` is when a bill run must wake
    it next (a period falls due, or corrections must be settled), so a bill run finds due work
    through one index range scan; NULL once it has ended and is settled. ``recheck_from`` is the
    earliest day whose billed periods a change may have made wrong: billed lines of periods ending
    after it are compared with the timeline until the corrections are issued. ``settle_on`` is when
    pending corrections must be issued even if no period is due (``invoice_now``, a cancellation).
    """

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("account_id", "position"),
        UniqueConstraint("account_id", "key"),
        CheckConstraint("interval IN ('month', 'year', 'week')", name="interval"),
        CheckConstraint("interval_count BETWEEN 1 AND 120", name="interval_count"),
        CheckConstraint("timing IN ('advance', 'arrears')", name="timing"),
        CheckConstraint("proration IN ('daily', 'full', 'none')", name="proration"),
        CheckConstraint("amount_minor >= 0", name="amount_minor"),
        CheckConstraint("bill_day BETWEEN 1 AND 31", name="bill_day"),
        CheckConstraint("bill_month IS NULL OR bill_month BETWEEN 1 AND 12", name="bill_month"),
        CheckConstraint("bill_weekday IS NULL OR bill_weekday BETWEEN 1 AND 7", name="bill_weekday"),
        Index("ix_subscriptions_next_bill_date", "next_bill_date", "account_id"),
    )

    id: Mapped[IntPK]
    # Indexed through uq_subscriptions_account_id_position, whose leading column it is.
    account_id: Mapped[str] = mapped_column(String(64), ForeignKey("accounts.id"))
    position: Mapped[int] = mapped_column(SmallInteger)
    key: Mapped[str] = mapped_column(String(100))
    plan: Mapped[str] = mapped_column(String(100))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[str] = mapped_column(String(8))
    interval_count: Mapped[int] = mapped_column(SmallInteger)
    timing: Mapped[str] = mapped_column(String(8))
    proration: Mapped[str] = mapped_column(String(8))
    bill_day: Mapped[int] = mapped_column(SmallInteger)
    bill_month: Mapped[int | None] = mapped_column(SmallInteger)
    bill_weekday: Mapped[int | None] = mapped_column(SmallInteger)
    start_date: Mapped[date]
    billed_until: Mapped[date | None]
    next_bill_date: Mapped[date | None]
    has_changes: Mapped[bool] = mapped_column(default=False)
    recheck_from: Mapped[date | None]
    settle_on: Mapped[date | None]
