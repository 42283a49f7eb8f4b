"""A customer account: the unit that is billed, locked and invoiced."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created


class Account(Base):
    """One onboarded account. ``body_hash`` is the onboarding message's hash (idempotency)."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("bill_day BETWEEN 1 AND 31", name="bill_day"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    bill_day: Mapped[int] = mapped_column(SmallInteger)
    combine_invoices: Mapped[bool | None] = mapped_column(
        doc="NULL follows the client default (settings.combine_invoices)."
    )
    start_date: Mapped[date]
    onboarded_on: Mapped[date]
    hold_until: Mapped[date | None] = mapped_column(
        doc="Separate-invoice catch-up periods are released by the first bill run on this date."
    )
    body_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[Created]
