"""Idempotency keys of messages already applied."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, utcnow


class ProcessedMessage(Base):
    """``key`` is the domain key (``"account.onboard:acme"``, ``"balance_line:c-1"``).

    A redelivery finds its key with the same ``body_hash`` and changes nothing; the same key with
    another hash is a conflict.
    """

    __tablename__ = "processed_messages"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    message_type: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(64))
    body_hash: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)
