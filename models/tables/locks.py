"""Advisory locks: one helper for every lock the worker takes on PostgreSQL.

Locks are transaction-scoped (released by commit or rollback, so they cannot leak) and keyed by a
64-bit hash of a text key; each kind of lock has its own hash seed, so an account and a producer
of the same name never share a lock. SQLite needs none: every write transaction holds the
database's write lock from ``BEGIN IMMEDIATE`` on.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

from sqlalchemy import ColumnElement, Connection, Subquery, func, select, text
from sqlalchemy.orm import Session

from models.tables.prepared import Prepared
from models.tables.store import is_postgres


class LockSpace(IntEnum):
    """The ``hashtextextended`` seed of each kind of lock."""

    ACCOUNT = 0
    PRODUCER = 1
    RELAY = 2
    MIGRATIONS = 3


_LOCK = Prepared(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, :space))"))
_TRY_LOCK = Prepared(text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, :space))"))
_TRY_LOCK_MANY = text(
    "SELECT key FROM unnest(CAST(:keys AS text[])) AS key "
    "WHERE pg_try_advisory_xact_lock(hashtextextended(key, :space))"
)


def lock(bind: Session | Connection, space: LockSpace, key: str) -> None:
    """Wait for the lock on ``key`` and hold it until the end of the transaction."""
    if is_postgres(bind):
        _LOCK.execute(bind, {"key": key, "space": int(space)})


def try_lock(bind: Session | Connection, space: LockSpace, key: str) -> bool:
    """Take the lock on ``key`` if it is free; False when another transaction holds it."""
    if not is_postgres(bind):
        return True
    [(locked,)] = _TRY_LOCK.execute(bind, {"key": key, "space": int(space)})
    return bool(locked)


def try_lock_many(session: Session, space: LockSpace, keys: Sequence[str]) -> list[str]:
    """Take every free lock among ``keys`` in one statement; return the keys now held.

    Each lock takes a slot of PostgreSQL's shared lock table: keys x concurrent transactions must
    stay below max_locks_per_transaction x max_connections (64 x 100 by default).
    """
    if not is_postgres(session):
        return list(keys)
    return list(session.scalars(_TRY_LOCK_MANY, {"keys": list(keys), "space": int(space)}))


def locked(space: LockSpace, key: ColumnElement[str]) -> Subquery:
    """``(SELECT pg_advisory_xact_lock(...))`` to select from: a lock taken inside another statement,
    before that statement's own rows are produced (PostgreSQL only)."""
    return select(func.pg_advisory_xact_lock(func.hashtextextended(key, int(space)))).subquery("locked")


def lock_account(session: Session, account_id: str) -> None:
    """Serialise work on one account until the end of the current transaction."""
    lock(session, LockSpace.ACCOUNT, account_id)
