"""Rejected and quarantined messages: the database dead-letter queue behind ``billing dlq``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, IntPK, utcnow


class Rejection(Base):
    """A message that will not be retried, with a code, a human reason and the redacted payload.

    Envelope fields are nullable: an undecodable payload has none. Where a replay can help (see
    ``jobs.rejections.REPLAYABLE``) the untouched signed envelope is kept too, because a replay must
    pass the signature check again. It holds what the message held (names, e-mails), so it is kept
    only until the replay, which records the id of the message it was re-sent as and drops the copy.
    """

    __tablename__ = "rejections"

    id: Mapped[IntPK]
    message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    message_type: Mapped[str | None] = mapped_column(String(40))
    producer: Mapped[str | None] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text, doc="the raw JSON, secrets and personal data redacted")
    envelope: Mapped[str | None] = mapped_column(Text, doc="the signed envelope as received, replayable codes only")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    replayed_at: Mapped[datetime | None]
    replay_message_id: Mapped[str | None] = mapped_column(String(64))
