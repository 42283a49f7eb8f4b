"""The transactional outbox: events written with the invoice, published by the relay."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created, IntPK


def new_event_id() -> str:
    """A fresh CloudEvents-friendly event id."""
    return str(uuid4())


class OutboxEvent(Base):
    """``id`` order is publish order; ``sent_at`` is NULL until the relay has appended it to the stream.

    The relay scans ``WHERE sent_at IS NULL ORDER BY id`` through ``ix_outbox_sent_at``.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_sent_at", "sent_at", "id"),)

    id: Mapped[IntPK]
    event_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_event_id)
    account_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoices.id"), doc="the invoice an invoice.created event announces (numbered before it is sent)"
    )
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text, doc="the event data as JSON")
    created_at: Mapped[Created]
    sent_at: Mapped[datetime | None]
