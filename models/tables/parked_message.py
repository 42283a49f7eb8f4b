"""Messages waiting for an account that is not onboarded yet (queues are not ordered across types)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, IntPK, utcnow


class ParkedMessage(Base):
    """Retried at ``retry_at`` until the grace period from ``first_seen_at`` runs out.

    ``account_id`` is deliberately not a foreign key: the account does not exist yet.
    """

    __tablename__ = "parked_messages"

    id: Mapped[IntPK]
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    message_type: Mapped[str] = mapped_column(String(40))
    envelope: Mapped[str] = mapped_column(Text, doc="the envelope as JSON")
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    retry_at: Mapped[datetime] = mapped_column(index=True)
