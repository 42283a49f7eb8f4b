"""One rule for every message: the same key and body again is a no-op, another body a conflict.

Every key (an onboarding's account, a balance line's ``line_id``, a reversal's id, a bill-run
trigger's envelope id, a bill-run batch's broker message id) is claimed the same way: one
``INSERT ... ON CONFLICT DO NOTHING`` in the transaction that does the work, so the key and the
work commit or roll back together.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, update
from sqlalchemy.orm import Session

from jobs.errors import Conflict
from jobs.outcomes import Outcome
from models.tables.prepared import Prepared
from models.tables.processed_message import ProcessedMessage
from models.tables.store import table_of, upsert_for

_PROCESSED = table_of(ProcessedMessage)
_CLAIM = Prepared(lambda dialect: (
    upsert_for(dialect, _PROCESSED)
    .values({name: bindparam(name, type_=_PROCESSED.c[name].type)
             for name in ("key", "message_type", "message_id", "body_hash", "outcome", "processed_at")})
    .on_conflict_do_nothing(index_elements=[_PROCESSED.c.key])
    .returning(_PROCESSED.c.key)
))


def _check_same_body(session: Session, key: str, body_hash: str, what: str) -> None:
    existing = session.get(ProcessedMessage, key)
    if existing is not None and existing.body_hash != body_hash:
        raise Conflict(
            f"{what} was already processed from message {existing.message_id} with a different body; "
            "the new body is refused, nothing was changed"
        )


def claim(
    session: Session, key: str, *, message_type: str, message_id: str, body_hash: str, now: datetime, what: str,
    outcome: Outcome = Outcome.PROCESSED,
) -> bool:
    """Record ``key`` as processed by this transaction; False if it was, with this body, before.

    The insert either claims the key or finds it taken (waiting, like a lock, for a concurrent
    claimer to commit or roll back). A taken key with another body raises ``Conflict``.
    """
    claimed = _CLAIM.execute(session, {"key": key, "message_type": message_type, "message_id": message_id,
                                        "body_hash": body_hash, "outcome": str(outcome), "processed_at": now}).first()
    if claimed is not None:
        return True
    _check_same_body(session, key, body_hash, what)
    return False


def settle(session: Session, key: str, outcome: Outcome) -> None:
    """Record how the work that claimed ``key`` ended, when that is not ``processed``."""
    session.execute(update(ProcessedMessage).where(ProcessedMessage.key == key).values(outcome=outcome))


def release(session: Session, key: str) -> None:
    """Give a key back, so the next delivery does the work again (its work was undone)."""
    session.execute(delete(ProcessedMessage).where(ProcessedMessage.key == key))


def recorded_hash(session: Session, key: str) -> str | None:
    """The body hash ``key`` was claimed with, if it was."""
    existing = session.get(ProcessedMessage, key)
    return existing.body_hash if existing is not None else None
