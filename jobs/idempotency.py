"""One rule for every message: the same key and body again is a no-op, another body a conflict.

Every key (an onboarding's account, a balance line's ``line_id``, a reversal's id, a bill-run
trigger's envelope id, a bill-run batch's broker message id) is claimed the same way: one
``INSERT ... ON CONFLICT DO NOTHING`` in the transaction that does the work, so the key and the
work commit or roll back together.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Executable, String, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from jobs.errors import Conflict
from jobs.outcomes import Outcome
from models.tables.locks import LockSpace, locked
from models.tables.prepared import Prepared
from models.tables.processed_message import ProcessedMessage
from models.tables.store import is_postgres, table_of, upsert_for

_PROCESSED = table_of(ProcessedMessage)
_COLUMNS = ("key", "message_type", "message_id", "body_hash", "outcome", "processed_at")
_CLAIM = Prepared(lambda dialect: (
    upsert_for(dialect, _PROCESSED)
    .values({name: bindparam(name, type_=_PROCESSED.c[name].type) for name in _COLUMNS})
    .on_conflict_do_nothing(index_elements=[_PROCESSED.c.key])
    .returning(_PROCESSED.c.key)
))


def _locked_claim() -> Executable:
    """The claim, its row selected from the account's advisory lock: one round trip for both.

    The lock is taken before the row is inserted (the row comes out of the lock's subquery), and a
    conflict is judged on the latest committed rows whatever the statement's snapshot.
    """
    row = (select(*(bindparam(name, type_=_PROCESSED.c[name].type) for name in _COLUMNS))
           .select_from(locked(LockSpace.ACCOUNT, bindparam("lock_key", type_=String))))
    return (postgresql.insert(_PROCESSED).from_select(list(_COLUMNS), row)
            .on_conflict_do_nothing(index_elements=[_PROCESSED.c.key]).returning(_PROCESSED.c.key))


_LOCK_AND_CLAIM = Prepared(_locked_claim())


def _check_same_body(session: Session, key: str, body_hash: str, what: str) -> None:
    existing = session.get(ProcessedMessage, key)
    if existing is not None and existing.body_hash != body_hash:
        raise Conflict(
            f"{what} was already processed from message {existing.message_id} with a different body; "
            "the new body is refused, nothing was changed"
        )


def claim(
    session: Session, key: str, *, message_type: str, message_id: str, body_hash: str, now: datetime, what: str,
    outcome: Outcome = Outcome.PROCESSED, account_lock: str | None = None,
) -> bool:
    """Record ``key`` as processed by this transaction; False if it was, with this body, before.

    The insert either claims the key or finds it taken (waiting, like a lock, for a concurrent
    claimer to commit or roll back). A taken key with another body raises ``Conflict``. With
    ``account_lock``, that account's lock is taken first, in the same statement.
    """
    values = {"key": key, "message_type": message_type, "message_id": message_id, "body_hash": body_hash,
              "outcome": str(outcome), "processed_at": now}
    if account_lock is not None and is_postgres(session):  # SQLite takes no locks (models.tables.locks)
        claimed = _LOCK_AND_CLAIM.execute(session, {**values, "lock_key": account_lock})
    else:
        claimed = _CLAIM.execute(session, values)
    if claimed:  # the row the insert returned
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
