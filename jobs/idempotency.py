"""One rule for every message: the same key and body again is a no-op, another body a conflict."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobs.errors import Conflict
from models.tables.processed_message import ProcessedMessage
from models.tables.store import table_of, upsert


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


def claim(
    session: Session, key: str, *, message_type: str, message_id: str, body_hash: str, outcome: str, now: datetime,
    what: str,
) -> bool:
    """Record ``key`` as processed by this transaction; False if it was, with this body, before.

    One statement where ``seen`` + ``remember`` take two: the insert either claims the key or finds
    it taken (waiting, like a lock, for a concurrent claimer to commit or roll back). A taken key
    with another body raises Conflict.
    """
    table = table_of(ProcessedMessage)
    claimed = session.execute(
        upsert(session, table)
        .values(key=key, message_type=message_type, message_id=message_id, body_hash=body_hash, outcome=outcome,
                processed_at=now)
        .on_conflict_do_nothing(index_elements=[table.c.key])
        .returning(table.c.key)
    ).first()
    return claimed is not None or not seen(session, key, body_hash, what)
