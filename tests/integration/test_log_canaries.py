"""Personal data in a failing statement reaches no log line, on PostgreSQL and on SQLite.

Engines hide bound parameters (``hide_parameters=True``) and the log processor scrubs what the
database quotes back (PostgreSQL's ``Failing row contains (...)``). Canary values are written
through a statement that fails, with SQLAlchemy's own engine logging on, and the exception is
logged as the pipeline logs a transient failure (its text, then its traceback).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import structlog
from sqlalchemy import Engine, insert
from sqlalchemy.exc import SQLAlchemyError

from models.migrations.runner import migrate
from models.tables.account import Account
from models.tables.store import make_engine, make_session_factory, transaction
from worker.logging import configure_logging
from worker.settings import Settings

pytestmark = pytest.mark.integration

CANARY_NAME = "Jane Canary-Quux"
CANARY_EMAIL = "jane.canary@example.org"
CANARIES = (CANARY_NAME, CANARY_EMAIL, "Canary-Quux")


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging(Settings(log_format="json", log_level="DEBUG"))
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # the engine logs its statements too
    yield capsys
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def fail_with_canaries(engine: Engine) -> None:
    log = structlog.get_logger("test")
    row = {"id": "acct-canary", "name": f"{CANARY_NAME} <{CANARY_EMAIL}>", "currency": None, "timezone": "UTC",
           "bill_day": 1, "combine_invoices": None, "start_date": date(2026, 1, 1), "onboarded_on": date(2026, 1, 1),
           "hold_until": None, "body_hash": "0" * 64, "created_at": datetime(2026, 1, 1, tzinfo=UTC)}
    with pytest.raises(SQLAlchemyError) as failed, transaction(make_session_factory(engine)) as session:
        session.execute(insert(Account), [row])
    log.warning("message_failed", error=f"{type(failed.value).__name__}: {failed.value}"[:500])
    try:
        raise failed.value
    except SQLAlchemyError:
        log.exception("message_failed_traceback")
        logging.getLogger("dramatiq.worker").exception("Failed to process message")


def assert_no_canary(text: str) -> None:
    assert "message_failed" in text and "NotNullViolation" in text  # the failure was logged at all
    leaked = [canary for canary in CANARIES if canary in text]
    assert not leaked, f"leaked {leaked}"


def test_postgresql_failures_log_no_personal_data(pg_url: str, pg_engine: Engine,
                                                  logs: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(pg_url)
    try:
        fail_with_canaries(engine)
    finally:
        engine.dispose()
    captured = logs.readouterr()
    assert_no_canary(captured.err + captured.out)


def test_sqlite_failures_log_no_personal_data(sqlite_url: str, logs: pytest.CaptureFixture[str]) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        fail_with_canaries(engine)
    finally:
        engine.dispose()
    captured = logs.readouterr()
    text = captured.err + captured.out
    leaked = [canary for canary in CANARIES if canary in text]
    assert not leaked, f"leaked {leaked}"
