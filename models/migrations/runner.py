"""Running the migrations: whoever migrates opens the connection and hands it to Alembic.

``env.py`` uses the connection it is given (``config.attributes["connection"]``); only the
``alembic`` command line, which has none, makes its own from ``sqlalchemy.url``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from models.tables.store import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent
"""The Alembic script folder, found from the installed package rather than the working directory."""


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` that works from any working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # ConfigParser interpolates "%": escape it (percent-encoded passwords).
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the latest revision (idempotent; safe to run concurrently).

    Alembic's progress lines (``Context impl``, ``Will assume``, plugin set-up) are for its own
    command line: a worker or an admin command that migrates on start prints none of them.
    """
    engine = make_engine(url, foreign_keys=False)
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(max(logging.WARNING, level))
    try:
        with engine.connect() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
    finally:
        alembic_log.setLevel(level)
        engine.dispose()
