"""One rule for every message: the same key and body again is a no-op, another body a conflict."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobs.errors import Conflict
from models.tables.processed_message import ProcessedMessage


def seen(session: Session, key: str, body_hash: str, what: str) -> bool:
    """True when ``key`` was processed with this body; raises Conflict for a different body."""
    existing = session.get(ProcessedMessage, key)
    if existing is None:
        return False
    if existing.body_hash != body_hash:
        raise Conflict(
            f"{what} was already processed from message {existing.message_id} with a different body; "
            "the new body is refused, nothing was changed"
        )
    return True


def remember(
    session: Session, key: str, *, message_type: str, message_id: str, body_hash: str, outcome: str, now: datetime
) -> None:
    session.add(ProcessedMessage(key=key, message_type=message_type, message_id=message_id,
                                 body_hash=body_hash, outcome=outcome, processed_at=now))
