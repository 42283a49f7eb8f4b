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
    broker_message_id: Mapped[str] = mapped_column(String(64))
    deliveries: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
