"""Plain-psycopg helpers on the run's database: empty every product table, count rows."""

from __future__ import annotations

from typing import Any

import psycopg

from models.tables import Base

PRODUCT_TABLES: tuple[str, ...] = tuple(table.name for table in Base.metadata.sorted_tables)


def connect(conninfo: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(conninfo, autocommit=autocommit)


def truncate_all(conninfo: str) -> None:
    """Fresh tables for the next part: every product table emptied, every id sequence restarted."""
    tables = ", ".join(f'"{name}"' for name in PRODUCT_TABLES)
    with connect(conninfo) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def scalar(conn: psycopg.Connection[tuple[Any, ...]], sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def count(conn: psycopg.Connection[tuple[Any, ...]], table: str) -> int:
    return int(scalar(conn, f'SELECT count(*) FROM "{table}"'))


def counts(conninfo: str, tables: tuple[str, ...] = PRODUCT_TABLES) -> dict[str, int]:
    with connect(conninfo) as conn:
        return {table: count(conn, table) for table in tables}


def checkpoints(conninfo: str) -> int:
    """Checkpoints the server has done so far (timed and requested): a delta shows one hit a timing."""
    with connect(conninfo) as conn:
        return int(scalar(conn, "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"))


def checkpoint(conninfo: str) -> None:
    """Write out every dirty buffer now, so the next timed part does not pay for the previous one's writes."""
    with connect(conninfo) as conn:
        conn.execute("CHECKPOINT")
