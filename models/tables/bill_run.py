"""Bill runs and the accounts that failed in them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created, IntPK, utcnow


def _counter() -> Mapped[int]:
    return mapped_column(Integer, default=0, server_default="0")


class BillRun(Base):
    """One "invoice everything due up to date D" run. ``run_date`` NULL = each account's local today."""

    __tablename__ = "bill_runs"
    __table_args__ = (CheckConstraint("status IN ('running', 'finished', 'failed')", name="status"),)

    id: Mapped[IntPK]
    run_date: Mapped[date | None]
    message_id: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    accounts_due: Mapped[int] = _counter()
    invoiced: Mapped[int] = _counter()
    skipped: Mapped[int] = _counter()
    failed: Mapped[int] = _counter()


class BillRunFailure(Base):
    """An account a bill run could not invoice, with the reason; the run itself carries on."""

    __tablename__ = "bill_run_failures"

    id: Mapped[IntPK]
    bill_run_id: Mapped[int] = mapped_column(ForeignKey("bill_runs.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[Created]
