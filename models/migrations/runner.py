"""Running the migrations: whoever migrates opens the connection and hands it to Alembic.

``env.py`` uses the connection it is given (``config.attributes["connection"]``); only the
``alembic`` command line, which has none, makes its own from ``sqlalchemy.url``.

A new SQLite file (``billing simulate`` makes one per run) can instead be given the schema
that the migrations build, replayed from ``sqlite_schema.sql``: a script written from a
database the migrations built (``python -m models.migrations.runner --write-sqlite-schema``),
used only while the migrations are byte for byte those it was written from, and checked against
them by ``tests/integration/test_migrations.py``. Alembic is imported only when it runs.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.tables.store import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent
"""The Alembic script folder, found from the installed package rather than the working directory."""
SQLITE_SCHEMA = MIGRATIONS_DIR / "sqlite_schema.sql"
"""What the migrations build on SQLite, as a script; its first line names the migrations it came from."""
DIGEST_PREFIX = "-- migrations sha256 "


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` that works from any working directory."""
    from alembic.config import Config

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
    from alembic import command

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


def migrations_digest() -> str:
    """A digest of everything that decides what the migrations build: ``env.py`` and every revision."""
    digest = hashlib.sha256()
    for path in [MIGRATIONS_DIR / "env.py", *sorted((MIGRATIONS_DIR / "versions").glob("*.py"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def sqlite_script(path: Path) -> str:
    """A script that rebuilds the SQLite database at ``path``: its schema in the order the objects
    were created (``sqlite_master`` by rowid, so a new connection loads tables and indexes in the
    same order), then its rows (``alembic_version`` at least), in one transaction."""
    connection = sqlite3.connect(path)
    try:
        schema = [f"{sql};" for (sql,) in connection.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        rows = [line for line in connection.iterdump() if line.startswith(("INSERT INTO ", "DELETE FROM "))]
    finally:
        connection.close()
    return "\n".join(["BEGIN TRANSACTION;", *schema, *rows, "COMMIT;"]) + "\n"


def write_sqlite_schema(target: Path = SQLITE_SCHEMA) -> Path:
    """Build a SQLite database with the migrations and write its script to ``target``."""
    with tempfile.TemporaryDirectory(prefix="billing-schema-") as folder:
        database = Path(folder) / "schema.sqlite3"
        migrate(f"sqlite:///{database}")
        script = sqlite_script(database)
    target.write_text(f"{DIGEST_PREFIX}{migrations_digest()}\n{script}", encoding="utf-8")
    return target


def stored_sqlite_schema() -> str | None:
    """The stored script, or None when it is missing or was written from other migrations."""
    try:
        text = SQLITE_SCHEMA.read_text(encoding="utf-8")
    except OSError:
        return None
    first, _, script = text.partition("\n")
    return script if first == f"{DIGEST_PREFIX}{migrations_digest()}" else None


def create_sqlite(path: Path) -> None:
    """A SQLite database at the latest revision in ``path``, a file that does not exist yet: the
    stored script when it is current, else (or if the file exists) the migrations themselves."""
    script = None if path.exists() else stored_sqlite_schema()
    if script is None:
        migrate(f"sqlite:///{path}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.executescript(script)
    finally:
        connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.migrations.runner")
    parser.add_argument("--write-sqlite-schema", action="store_true",
                        help=f"rewrite {SQLITE_SCHEMA.name} from the migrations (after adding or changing one)")
    args = parser.parse_args(argv)
    if not args.write_sqlite_schema:
        parser.print_help()
        return 2
    print(f"wrote {write_sqlite_schema().relative_to(MIGRATIONS_DIR.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
