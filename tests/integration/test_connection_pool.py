"""A worker process keeps one database connection per thread instead of reopening them.

SQLAlchemy's default pool keeps 5 connections; a process of 8 threads would close a connection
after nearly every transaction and open a new one (a PostgreSQL server process forked) for the next.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, event, text

from models.tables.store import make_engine, make_session_factory, transaction
from worker.processes import worker_environment
from worker.settings import Settings

pytestmark = pytest.mark.integration

THREADS = 8


def test_billing_worker_sizes_the_pool_to_its_threads_unless_told_otherwise() -> None:
    assert worker_environment(Settings(), THREADS, {})["BILLING_DATABASE_POOL_SIZE"] == str(THREADS + 2)
    told = worker_environment(Settings(), THREADS, {"BILLING_DATABASE_POOL_SIZE": "3"})
    assert told["BILLING_DATABASE_POOL_SIZE"] == "3"
    assert Settings(database_pool_size=12).database_pool_size == 12


def _connections_opened(engine: Engine, rounds: int) -> int:
    opened = 0

    def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    event.listen(engine, "connect", count)
    sessions = make_session_factory(engine)
    barrier = threading.Barrier(THREADS)

    def work() -> None:
        for _ in range(rounds):
            barrier.wait(10)  # every thread holds a connection at once
            with transaction(sessions) as session:
                session.execute(text("SELECT pg_sleep(0.05)"))  # long enough to overlap

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return opened


def test_threads_reuse_their_connections_when_the_pool_fits_them(pg_url: str) -> None:
    sized = make_engine(pg_url, pool_size=THREADS + 2)
    default = make_engine(pg_url)
    try:
        assert _connections_opened(sized, rounds=10) <= THREADS
        assert _connections_opened(default, rounds=10) > 2 * THREADS  # the overflow is reopened every round
    finally:
        sized.dispose()
        default.dispose()
