"""Delivery counts per message, kept in the database because SIGKILL skips dramatiq's own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, utcnow


class MessageDelivery(Base):
    """Incremented (and committed) before a message is processed; past the limit it is quarantined."""

    __tablename__ = "message_deliveries"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True, doc="the envelope id")
    message_type: Mapped[str] = mapped_column(String(40))
    broker_message_id: Mapped[str] = mapped_column(String(64), doc="the first broker message that carried it")
    resent_broker_message_id: Mapped[str | None] = mapped_column(
        String(64), doc="the broker message the worker re-sent it in (a resumed line, a replayed dead letter)"
    )
    deliveries: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
