"""What happened to a subscription after it started: append-only, replayed into its timeline."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created, IntPK

CHANGE_KINDS = ("change", "pause", "resume", "cancel", "bill_day")


class SubscriptionChange(Base):
    """One lifecycle message's effect on one subscription, in arrival order (``id``).

    ``change``: from ``effective`` on, ``plan`` at ``amount_minor``; ``pause``: [``effective``,
    ``until``) costs nothing (``until`` NULL: until a resume); ``resume``: the open pause ends on
    ``effective``; ``cancel``: nothing is billed on or after ``effective``; ``bill_day``: processed
    on ``effective`` (the account's local date), periods move to ``bill_day`` after the current one.
    Who asked and why is kept for the audit trail.
    """

    __tablename__ = "subscription_changes"
    __table_args__ = (
        CheckConstraint(f"kind IN ({', '.join(repr(kind) for kind in CHANGE_KINDS)})", name="kind"),
    )

    id: Mapped[IntPK]
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    change_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    effective: Mapped[date]
    until: Mapped[date | None]
    plan: Mapped[str | None] = mapped_column(String(100))
    amount_minor: Mapped[int | None]
    bill_day: Mapped[int | None] = mapped_column(SmallInteger)
    message_type: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(64))
    producer: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[Created]
