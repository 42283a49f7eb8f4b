"""The ``COPY`` baseline: the very rows a bill run wrote, copied again into empty look-alike tables.

Scratch tables are ``LIKE <table> INCLUDING ALL`` (columns, defaults, checks, indexes, unique keys)
plus the same foreign keys, pointing at the scratch copies where the original points at a copied
table. The rows are read back as COPY text before the clock starts, so only the server's COPY is
timed: once in transactions of ``batch`` accounts (the bill run's own transaction size), once as
one transaction. Each timing starts after a ``CHECKPOINT``, like the bill run it is compared with.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from tests.bench.database import checkpoint, checkpoints, connect
from tests.bench.sampler import Sampler

COPIED = ("invoices", "invoice_lines", "outbox", "balance_entries")
"""Parents first: each scratch table's foreign keys may point at an earlier one."""

_SELECT = {
    "invoices": "SELECT * FROM invoices WHERE account_id BETWEEN {lo} AND {hi} ORDER BY id",
    "invoice_lines": "SELECT l.* FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
                     "WHERE i.account_id BETWEEN {lo} AND {hi} ORDER BY l.id",
    "outbox": "SELECT * FROM outbox WHERE account_id BETWEEN {lo} AND {hi} ORDER BY id",
    "balance_entries": "SELECT e.* FROM balance_entries e JOIN invoices i ON i.id = e.invoice_id "
                       "WHERE i.account_id BETWEEN {lo} AND {hi} ORDER BY e.id",
}

Chunk = dict[str, bytes]


def scratch(table: str) -> str:
    return f"bench_copy_{table}"


@dataclass(frozen=True)
class CopyResult:
    rows: int
    batch_seconds: float
    one_txn_seconds: float
    foreign_cores: float
    """CPU other tenants used during the two timed COPYs."""
    checkpoints: int
    """Server checkpoints that happened during them."""

    @property
    def batch_rows_per_second(self) -> float:
        return self.rows / self.batch_seconds

    @property
    def one_txn_rows_per_second(self) -> float:
        return self.rows / self.one_txn_seconds


def create_scratch_tables(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    for table in COPIED:
        conn.execute(f"DROP TABLE IF EXISTS {scratch(table)} CASCADE")
        conn.execute(f"CREATE TABLE {scratch(table)} (LIKE {table} INCLUDING ALL)")
        keys = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
                            "AND contype = 'f' ORDER BY conname", (table,)).fetchall()
        for (definition,) in keys:
            conn.execute(f"ALTER TABLE {scratch(table)} ADD {_retarget(str(definition))}")


def _retarget(definition: str) -> str:
    """``FOREIGN KEY (x) REFERENCES invoices(id)`` → the scratch ``invoices`` when it is copied too."""
    def swap(match: re.Match[str]) -> str:
        target = match.group(1)
        return f"REFERENCES {scratch(target) if target in COPIED else target}("
    return re.sub(r"REFERENCES (\w+)\(", swap, definition)


def drop_scratch_tables(conninfo: str) -> None:
    with connect(conninfo) as conn:
        for table in reversed(COPIED):
            conn.execute(f"DROP TABLE IF EXISTS {scratch(table)} CASCADE")


def read_chunks(conn: psycopg.Connection[tuple[Any, ...]], account_ids: list[str], batch: int) -> list[Chunk]:
    """The written rows as COPY text, grouped by ``batch`` accounts (sorted ids)."""
    chunks: list[Chunk] = []
    with conn.cursor() as cur:
        for start in range(0, len(account_ids), batch):
            lo, hi = account_ids[start], account_ids[min(start + batch, len(account_ids)) - 1]
            chunk: Chunk = {}
            for table in COPIED:
                query = sql.SQL(_SELECT[table]).format(lo=sql.Literal(lo), hi=sql.Literal(hi))
                with cur.copy(sql.SQL("COPY ({}) TO STDOUT").format(query)) as copy:
                    chunk[table] = b"".join(bytes(block) for block in copy)
            chunks.append(chunk)
    return chunks


def _copy_in(cur: psycopg.Cursor[tuple[Any, ...]], table: str, data: bytes) -> None:
    if data:
        with cur.copy(f"COPY {scratch(table)} FROM STDIN") as copy:
            copy.write(data)


def _timed_copy(conn: psycopg.Connection[tuple[Any, ...]], transactions: list[Chunk]) -> float:
    with conn.cursor() as cur:
        begin = time.perf_counter()
        for chunk in transactions:
            with conn.transaction():
                for table in COPIED:
                    _copy_in(cur, table, chunk[table])
        return time.perf_counter() - begin


def _measured(conninfo: str, conn: psycopg.Connection[tuple[Any, ...]], transactions: list[Chunk],
              redis_pid: int | None) -> tuple[float, float, int]:
    """(seconds, foreign cores, checkpoints) of one COPY pass, started on clean buffers."""
    checkpoint(conninfo)
    before = checkpoints(conninfo)
    with Sampler(conninfo, redis_pid) as sampler:
        seconds = _timed_copy(conn, transactions)
    return seconds, sampler.usage.foreign_cores, checkpoints(conninfo) - before


def _truncate_scratch(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    conn.execute("TRUNCATE " + ", ".join(scratch(table) for table in COPIED))


def copy_baseline(conninfo: str, batch: int, redis_pid: int | None = None) -> CopyResult:
    """Time COPY of every invoice, line, outbox row and balance entry now in the database."""
    with connect(conninfo) as conn:
        account_ids = [str(row[0]) for row in conn.execute("SELECT DISTINCT account_id FROM invoices ORDER BY 1")]
        chunks = read_chunks(conn, account_ids, batch)
        rows = sum(data.count(b"\n") for chunk in chunks for data in chunk.values())
        create_scratch_tables(conn)
        batch_seconds, batch_foreign, batch_checkpoints = _measured(conninfo, conn, chunks, redis_pid)
        _truncate_scratch(conn)
        whole = {table: b"".join(chunk[table] for chunk in chunks) for table in COPIED}
        one_seconds, one_foreign, one_checkpoints = _measured(conninfo, conn, [whole], redis_pid)
    drop_scratch_tables(conninfo)
    return CopyResult(rows, batch_seconds, one_seconds, max(batch_foreign, one_foreign),
                      batch_checkpoints + one_checkpoints)
