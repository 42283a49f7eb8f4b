"""Bill runs through real processes on PostgreSQL and Redis: two `billing worker` processes and two
concurrent `billing bill-run --wait` triggers for the same date issue each invoice exactly once,
and a poisoned account fails alone with `bill-run --wait` exiting non-zero."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, func, select, text

from models.tables.bill_run import BillRun, BillRunFailure
from models.tables.invoice import Invoice
from models.tables.invoice_counter import InvoiceCounter
from models.tables.invoice_line import InvoiceLine
from models.tables.outbox import OutboxEvent
from models.tables.subscription import Subscription
from tests.e2e.stack import running, stack_environment
from tests.integration.bill_run_harness import seed_due_accounts

pytestmark = pytest.mark.e2e

@pytest.fixture
def env(clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str) -> dict[str, str]:
    return stack_environment(pg_url, redis_url, redis_namespace, log_format="json", bill_run_batch_size="20")


WORKER = ["worker", "--processes", "1", "--threads", "3"]
"""One `billing worker` command; several of them stand for several hosts."""


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two workers and two relays (one numbers and publishes at a time, the other stands by)."""
    with running(env, tmp_path / "stack.log", ["relay"], ["relay"], WORKER, WORKER) as started:
        yield started


def stream_events(env: dict[str, str]) -> list[dict[str, Any]]:
    entries = redis.Redis.from_url(env["BILLING_REDIS_URL"]).xrange(f"{env['BILLING_NAMESPACE']}:events:invoice")
    return [json.loads(fields[b"event"]) for _, fields in entries]


def wait_until_published(engine: Engine, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while scalar(engine, select(func.count()).select_from(OutboxEvent).where(OutboxEvent.sent_at.is_(None))):
        assert time.monotonic() < deadline, "the relays did not publish every event in time"
        time.sleep(0.1)


def bill_run(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "worker.cli", "bill-run", *args, "--timeout", "120"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=150)
    return process.returncode, out, err


def scalar(engine: Engine, query: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def status_json(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "worker.cli", "status", "--json"], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def test_two_workers_and_two_triggers_for_one_date_issue_each_invoice_once(
    workers: list[subprocess.Popen[bytes]], env: dict[str, str], clean_pg: Engine,
) -> None:
    today = datetime.now(UTC).date()
    due = today - timedelta(days=1)
    ids = [f"acct-{n:04d}" for n in range(300)]
    seed_due_accounts(clean_pg, ids[:200], due=due)
    seed_due_accounts(clean_pg, ids[200:], due=due, plans=2)  # a hundred accounts with two plans

    triggers = [bill_run(env, "--date", today.isoformat(), "--wait") for _ in range(2)]
    outcomes = [finish(trigger) for trigger in triggers]
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    wait_until_published(clean_pg)  # invoices are numbered as their events are published

    with clean_pg.connect() as connection:
        per_account = connection.execute(
            select(Invoice.account_id, func.count()).group_by(Invoice.account_id)).all()
        numbers = sorted(connection.execute(select(Invoice.number)).scalars())
        last_number = connection.execute(select(InvoiceCounter.last_number)).scalar_one()
        lines = connection.execute(select(func.count(), func.count(func.distinct(
            func.concat(InvoiceLine.subscription_id, "/", InvoiceLine.period_start))))).one()
        runs = connection.execute(select(BillRun.status, BillRun.accounts_due, BillRun.invoiced, BillRun.skipped,
                                         BillRun.failed, BillRun.run_date).order_by(BillRun.id)).all()
        watermarks = connection.execute(select(func.count()).select_from(Subscription)
                                        .where(Subscription.next_bill_date <= today)).scalar_one()
    assert sorted(per_account) == [(account_id, 1) for account_id in ids]
    assert numbers == [f"INV-{today.year}-{n:06d}" for n in range(1, 301)]  # unique and gapless
    assert last_number == 300
    assert tuple(lines) == (400, 400)  # one line per subscription and period
    assert sorted(event["data"]["number"] for event in stream_events(env)) == numbers  # one event per invoice
    assert [run.status for run in runs] == ["finished", "finished"]
    assert all(run.run_date == today for run in runs)
    assert sum(run.invoiced for run in runs) == 300
    assert all(run.invoiced + run.skipped + run.failed == run.accounts_due and run.failed == 0 for run in runs)
    assert runs[0].accounts_due + runs[1].accounts_due >= 300
    assert watermarks == 0

    document = status_json(env)
    shown = sorted((r["status"], r["accounts_due"], r["invoiced"], r["skipped"], r["failed"])
                   for r in document["bill_runs"])
    assert shown == sorted((r.status, r.accounts_due, r.invoiced, r.skipped, r.failed) for r in runs)
    assert all(r["started_at"] and r["finished_at"] and r["failures"] == [] for r in document["bill_runs"])

    code, _, _ = finish(bill_run(env, "--wait"))  # a third run finds nothing left to bill
    assert code == 0
    assert scalar(clean_pg, select(func.count()).select_from(Invoice)) == 300
    assert scalar(clean_pg, select(BillRun.accounts_due).order_by(BillRun.id.desc()).limit(1)) == 0


def test_a_poisoned_account_fails_alone_and_bill_run_wait_exits_non_zero(
    env: dict[str, str], clean_pg: Engine, tmp_path: Path,
) -> None:
    due = datetime.now(UTC).date() - timedelta(days=1)
    ids = [f"acct-{n:03d}" for n in range(60)]
    seed_due_accounts(clean_pg, ids, due=due)
    seed_due_accounts(clean_pg, ["acct-poison"], due=due)
    with clean_pg.begin() as connection:  # a bill month needs an interval that divides a year: 5 does not
        connection.execute(text("UPDATE subscriptions SET interval_count = 5, bill_month = 3 "
                                "WHERE account_id = 'acct-poison'"))
    with running(env, tmp_path / "worker.log", WORKER):
        code, out, err = finish(bill_run(env, "--wait"))
    assert code == 1, (out, err)
    assert "61/61 accounts, 60 invoiced, 0 skipped, 1 failed" in out
    assert "acct-poison [invalid] bill_month: needs an interval that divides a year" in err
    with clean_pg.connect() as connection:
        run = connection.execute(select(BillRun.id, BillRun.status, BillRun.accounts_due, BillRun.invoiced,
                                        BillRun.skipped, BillRun.failed)).one()
        failures = connection.execute(select(BillRunFailure.bill_run_id, BillRunFailure.account_id,
                                             BillRunFailure.code)).all()
    assert tuple(run)[1:] == ("finished", 61, 60, 0, 1)
    assert [tuple(f) for f in failures] == [(run.id, "acct-poison", "invalid")]
    assert scalar(clean_pg, select(func.count()).select_from(Invoice)) == 60
    assert scalar(clean_pg, select(func.count()).select_from(Invoice).where(Invoice.account_id == "acct-poison")) == 0

    shown = status_json(env)["bill_runs"][0]
    assert (shown["status"], shown["failed"], shown["invoiced"]) == ("finished", 1, 60)
    assert shown["failures"] == [{"account": "acct-poison", "code": "invalid", "reason": (
        "bill_month: needs an interval that divides a year or spans whole years, not 5 months")}]
