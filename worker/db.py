"""Database engines, sessions and the one-transaction-per-message unit of work.

PostgreSQL in production, a SQLite file by default. Both run the same code: SQLite is made to
behave (write-ahead log, enforced foreign keys, writers that queue behind ``BEGIN IMMEDIATE``
instead of failing to upgrade a read lock), and the per-account lock is an advisory lock on
PostgreSQL and a no-op on SQLite, whose write transactions are already serialised.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

import models.migrations

MIGRATIONS_DIR = Path(models.migrations.__file__).resolve().parent
"""The Alembic script folder, found from the installed package rather than the working directory."""

SQLITE_BUSY_TIMEOUT_MS = 30_000
POOL_RECYCLE_SECONDS = 1800
"""Connections are replaced after half an hour, before proxies and firewalls drop idle ones."""


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_file(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("uri"):
        return None
    return Path(database)


def _configure_sqlite(engine: Engine, *, foreign_keys: bool) -> None:
    """Per-connection PRAGMAs and SQLAlchemy-driven ``BEGIN IMMEDIATE`` (SQLAlchemy's documented recipe).

    The sqlite3 driver's own transaction handling is switched off (``isolation_level = None``)
    so that SQLAlchemy emits BEGIN itself, and IMMEDIATE takes the write lock up front: a second
    writer waits ``busy_timeout`` for it instead of failing with "database is locked" when it
    tries to upgrade a read lock mid-transaction. DDL becomes transactional as a side effect.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, foreign_keys: bool = True) -> Engine:
    """An engine for ``url`` with the settings billing relies on.

    ``foreign_keys=False`` only matters on SQLite and is for migrations: batch table rebuilds
    drop and recreate referenced tables, which enforced foreign keys would refuse.
    """
    parsed = make_url(url)
    if _is_sqlite(parsed):
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        _configure_sqlite(engine, foreign_keys=foreign_keys)
        return engine
    # No pre-ping: it costs a round trip per checkout, i.e. per transaction. A connection that died
    # meanwhile fails its first statement instead; SQLAlchemy then discards the whole pool and the
    # message is retried (a transient fault), so a database restart costs one retry, not a message.
    return create_engine(parsed, pool_recycle=POOL_RECYCLE_SECONDS)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (results are handed on after the unit of work)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit if the block succeeds, roll back if it raises, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(session_or_engine: Session | Engine | Connection) -> bool:
    """Whether the session, engine or connection talks to PostgreSQL."""
    if isinstance(session_or_engine, Session):
        return session_or_engine.get_bind().dialect.name == "postgresql"
    return session_or_engine.dialect.name == "postgresql"


def lock_account(session: Session, account_id: str) -> None:
    """Serialise work on one account until the end of the current transaction.

    PostgreSQL: a transaction-scoped advisory lock on a 64-bit hash of the id (released by
    commit or rollback, so it cannot leak). SQLite: nothing to do, every write transaction holds
    the database's write lock from ``BEGIN IMMEDIATE`` on.
    """
    if is_postgres(session):
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:account_id, 0))"),
            {"account_id": account_id},
        )


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` that works from any working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # ConfigParser interpolates "%": escape it (percent-encoded passwords).
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the latest revision (idempotent; safe to run concurrently)."""
    command.upgrade(alembic_config(url), "head")
