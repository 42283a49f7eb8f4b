"""Alembic environment: migrates ``Base.metadata`` on PostgreSQL or SQLite.

Whoever migrates hands over the connection (``config.attributes["connection"]``, as
``models.migrations.runner.migrate`` does); the ``alembic`` command line has none and connects to
``sqlalchemy.url``, else ``BILLING_DATABASE_URL``, else the default SQLite file, so ``alembic
upgrade head`` at the repository root migrates the same database the worker uses. Concurrent
upgrades are serialised: an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite; the loser
then finds nothing left to do.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from models.tables import Base
from models.tables.base import PERCENT_PRECISION, PERCENT_SCALE, Percent, UTCDateTime
from models.tables.locks import LockSpace, lock
from models.tables.store import make_engine

MIGRATION_LOCK_KEY = "billing-worker:migrations"
DEFAULT_URL = "sqlite:///.billing/billing.sqlite3"

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    return os.environ.get("BILLING_DATABASE_URL", DEFAULT_URL)


def _render_item(kind: str, obj: object, _context: AutogenContext) -> str | Literal[False]:
    """Render the tables' type decorators as the plain types they store.

    A revision is frozen in time: it must not import application code that may change later.
    """
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, Percent):
        return f"sa.Numeric(precision={PERCENT_PRECISION}, scale={PERCENT_SCALE})"
    return False


def run_migrations_offline() -> None:
    """Emit the SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    """Migrate in one transaction, holding the migration lock."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        # SQLite DDL is transactional once SQLAlchemy emits BEGIN itself (models.tables.store does).
        transactional_ddl=True,
    )
    with context.begin_transaction():
        lock(connection, LockSpace.MIGRATIONS, MIGRATION_LOCK_KEY)
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            _check_sqlite_foreign_keys(connection)


def run_migrations_online() -> None:
    """Migrate on the connection we were given, or else on one of our own."""
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _migrate(given)
        return
    engine = make_engine(_url(), foreign_keys=False)
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    """Foreign keys are off while SQLite migrates: verify them before committing."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration left rows violating foreign keys: {broken[:10]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
