"""Webhook deliveries: one row per (endpoint, event), sent by the relay's delivery loop.

The relay stages these rows in the transaction that marks the outbox row sent, so an event is
handed to every endpoint exactly once and an endpoint that is down holds back nothing else.
``id`` order is delivery order within an endpoint: only an account's oldest undelivered row on an
endpoint is ever sent, so an endpoint never receives an account's next event before the previous
one. ``body`` is the exact JSON that is signed and sent on every attempt.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created, IntPK


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    """Not delivered yet: due at ``next_attempt_at``, or waiting behind the account's earlier event."""
    DELIVERED = "delivered"
    DEAD = "dead"
    """Retried until ``retry_until`` without success: in the dead-letter list until replayed."""


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint", "event_id"),
        Index("ix_webhook_deliveries_endpoint", "endpoint", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_account", "endpoint", "account_id", "id"),
    )

    id: Mapped[IntPK]
    endpoint: Mapped[str] = mapped_column(String(64), doc="the configured endpoint's name")
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, doc="the CloudEvent JSON, byte for byte what is signed and sent")
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    retry_until: Mapped[datetime] = mapped_column(doc="after this, a failed attempt dead-letters the delivery")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[Created]
    delivered_at: Mapped[datetime | None]
    replayed_at: Mapped[datetime | None]
