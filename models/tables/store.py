"""Engines, sessions and units of work: what every writer of the tables shares.

PostgreSQL in production, a SQLite file by default. Both run the same code: SQLite is made to
behave (write-ahead log, enforced foreign keys, writers that queue behind ``BEGIN IMMEDIATE``
instead of failing to upgrade a read lock). The dialect's upsert lives here too, so the callers
that claim a key or bump a counter write one statement whatever the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
POOL_RECYCLE_SECONDS = 1800
"""Connections are replaced after half an hour, before proxies and firewalls drop idle ones."""
DEFAULT_POOL_SIZE = 5  # SQLAlchemy's own; worker processes size theirs to their threads
POOL_OVERFLOW = 10  # connections beyond the pool, opened for a burst and closed when returned


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


def make_engine(url: str, *, foreign_keys: bool = True, pool_size: int = DEFAULT_POOL_SIZE) -> Engine:
    """An engine for ``url`` with the settings billing relies on.

    ``foreign_keys=False`` only matters on SQLite and is for migrations: batch table rebuilds
    drop and recreate referenced tables, which enforced foreign keys would refuse. Statement
    parameters never appear in error messages (``hide_parameters``): they carry customer data.
    ``pool_size`` is how many connections stay open: a process whose threads outnumber it closes
    and reopens a connection for nearly every transaction (a server process forked each time).
    """
    parsed = make_url(url)
    if _is_sqlite(parsed):
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, hide_parameters=True)
        _configure_sqlite(engine, foreign_keys=foreign_keys)
        return engine
    # No pre-ping: it costs a round trip per checkout, i.e. per transaction. A connection that died
    # meanwhile fails its first statement instead; SQLAlchemy then discards the whole pool and the
    # message is retried (a transient fault), so a database restart costs one retry, not a message.
    return create_engine(parsed, pool_recycle=POOL_RECYCLE_SECONDS, pool_size=pool_size,
                         max_overflow=POOL_OVERFLOW, hide_parameters=True)


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


@contextmanager
def autocommit(factory: sessionmaker[Session]) -> Iterator[Connection]:
    """A connection whose statements each commit on their own: on PostgreSQL without BEGIN and
    COMMIT round trips; on SQLite one transaction around the block."""
    bind = factory.kw.get("bind")
    assert isinstance(bind, Engine), "sessions are bound to one engine"
    if bind.dialect.name != "postgresql":
        with bind.begin() as connection:
            yield connection
        return
    with bind.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


def is_postgres(session_or_engine: Session | Engine | Connection) -> bool:
    """Whether the session, engine or connection talks to PostgreSQL."""
    if isinstance(session_or_engine, Session):
        return session_or_engine.get_bind().dialect.name == "postgresql"
    return session_or_engine.dialect.name == "postgresql"


def upsert(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` with the dialect's ``ON CONFLICT`` clauses (both dialects spell them alike)."""
    return upsert_for(session.get_bind().dialect.name, table)


def upsert_for(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """``upsert`` for a dialect name (statements built once per dialect, ``models.tables.prepared``)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def table_of(model: type[Any]) -> Table:
    """The Core table behind a mapped class."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
