"""Bill runs export what the alerts need: runs by outcome, failed accounts, and when the last one finished.

The last-finished gauge is wall-clock time even on a rehearsal clock (here a manual clock in 2026-05),
so ``time() - billing_bill_run_last_finished_timestamp_seconds`` means what it says.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from jobs.metrics import REGISTRY
from models.migrations.runner import migrate
from models.tables.store import make_engine
from tests.integration.bill_run_harness import Harness, seed_due_accounts

pytestmark = pytest.mark.integration

DUE = date(2026, 5, 4)
NOW = datetime(2026, 5, 4, 12, tzinfo=UTC)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def database(sqlite_url: str) -> Iterator[str]:
    migrate(sqlite_url)
    yield sqlite_url


def test_a_finished_run_with_a_failed_account_is_counted_and_stamped(database: str) -> None:
    engine = make_engine(database)
    seed_due_accounts(engine, ["acct-1", "acct-2"], due=DUE)
    seed_due_accounts(engine, ["acct-mars"], due=DUE, timezone="Mars/Olympus_Mons")
    engine.dispose()
    with_failures = sample("billing_bill_runs_total", outcome="finished_with_failures")
    failed_accounts = sample("billing_bill_run_failed_accounts_total")
    runs = sample("billing_bill_run_seconds_count")
    before = time.time()
    h = Harness(database, NOW)
    try:
        run = h.run()
    finally:
        h.close()

    assert run is not None and (run.status, run.failed) == ("finished", 1)
    assert sample("billing_bill_runs_total", outcome="finished_with_failures") == with_failures + 1
    assert sample("billing_bill_run_failed_accounts_total") == failed_accounts + 1
    assert sample("billing_bill_run_seconds_count") == runs + 1
    assert before <= sample("billing_bill_run_last_finished_timestamp_seconds") <= time.time()


def test_a_run_without_failures_counts_as_finished(database: str) -> None:
    engine = make_engine(database)
    seed_due_accounts(engine, ["acct-1"], due=DUE)
    engine.dispose()
    finished = sample("billing_bill_runs_total", outcome="finished")
    failed_accounts = sample("billing_bill_run_failed_accounts_total")
    h = Harness(database, NOW)
    try:
        run = h.run()
    finally:
        h.close()

    assert run is not None and (run.status, run.invoiced) == ("finished", 1)
    assert sample("billing_bill_runs_total", outcome="finished") == finished + 1
    assert sample("billing_bill_run_failed_accounts_total") == failed_accounts


def test_a_fan_out_that_fails_counts_a_failed_run(database: str) -> None:
    engine = make_engine(database)
    seed_due_accounts(engine, [f"acct-{n}" for n in range(4)], due=DUE)
    engine.dispose()
    failed = sample("billing_bill_runs_total", outcome="failed")
    h = Harness(database, NOW, bill_run_batch_size=1)
    try:
        h.broker.fail_after = 1
        with pytest.raises(ConnectionError):
            h.trigger()
    finally:
        h.close()

    assert sample("billing_bill_runs_total", outcome="failed") == failed + 1


def test_every_bill_run_outcome_is_exported_before_the_first_run() -> None:
    for outcome in ("finished", "finished_with_failures", "failed"):
        assert REGISTRY.get_sample_value("billing_bill_runs_total", {"outcome": outcome}) is not None
