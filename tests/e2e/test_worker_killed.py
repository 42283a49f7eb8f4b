"""1,000 messages while the worker is SIGKILLed twice: every message applied exactly once.

A SIGKILL skips every clean-up: the killed process's prefetched and in-flight messages stay in its
Redis ack set until the broker's maintenance sees its heartbeat stop and hands them back, and some
of them had committed before the kill. Nothing may be lost (every onboarding invoiced, every line
recorded) and nothing doubled (one invoice per account, no duplicate lines, gapless numbers, one
event per invoice).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine

from tests.e2e.stack import billing, onboarding, scalar, stack_environment, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ACCOUNTS = 600
LINES = 400


@pytest.fixture
def env(clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str) -> dict[str, str]:
    # A dead worker's messages come back within seconds (the product's default is 15 s).
    return stack_environment(pg_url, redis_url, redis_namespace, heartbeat_timeout_ms="3000",
                             maintenance_chance="200000")


def credit(number: int) -> dict[str, Any]:
    return {"line_id": f"credit-{number:04d}", "account": f"acct-{number:04d}", "kind": "credit", "amount": "2.50",
            "currency": "USD", "label": "goodwill", "reason": "kill test", "author": "support:kill-test"}


class Workers:
    """`billing worker` in its own process group, so one SIGKILL takes the parent and its forks."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log.open("a")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "worker", "--processes", "2", "--threads", "4"],
            env=self.env, stdout=self.log, stderr=self.log, start_new_session=True,
        )

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    started = Workers(env, tmp_path / "worker.log")
    relay = subprocess.Popen([sys.executable, "-m", "worker.cli", "relay"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield started
    started.stop()
    relay.terminate()
    relay.wait(20)


def test_two_sigkills_lose_nothing_and_double_nothing(
    workers: Workers, env: dict[str, str], clean_pg: Engine, redis_url: str, redis_namespace: str, tmp_path: Path,
) -> None:
    onboardings = tmp_path / "onboard.jsonl"
    onboardings.write_text("".join(json.dumps(onboarding(f"acct-{n:04d}")) + "\n" for n in range(ACCOUNTS)))
    credits = tmp_path / "credits.jsonl"
    credits.write_text("".join(json.dumps(credit(n)) + "\n" for n in range(LINES)))
    billing(env, "enqueue", "account.onboard", str(onboardings))
    billing(env, "enqueue", "balance_line.create", str(credits))

    invoices = lambda: scalar(clean_pg, "SELECT count(*) FROM invoices")  # noqa: E731
    at_kills = []
    workers.start()
    for threshold in (150, 400):
        wait_for(lambda: invoices() >= threshold, 120, f"{threshold} invoices")  # noqa: B023 - used at once
        workers.kill()
        at_kills.append(invoices())
        workers.start()
    assert all(count < ACCOUNTS for count in at_kills), f"a kill came after the run had finished: {at_kills}"
    recorded = "SELECT (SELECT count(*) FROM balance_lines) + (SELECT count(*) FROM parked_messages)"
    wait_for(lambda: invoices() == ACCOUNTS and scalar(clean_pg, recorded) >= LINES, 180,
             "every message after the second kill")
    # An onboarding killed between its commit and re-sending the lines that waited for it leaves them
    # parked: the scheduler's sweep (every minute in production) re-sends them.
    billing(env, "scheduler", "--once")
    wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM balance_lines") == LINES, 120, "every credit line")
    wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0, 60,
             "the relay")

    assert invoices() == ACCOUNTS
    assert scalar(clean_pg, "SELECT count(DISTINCT account_id) FROM invoices") == ACCOUNTS
    assert scalar(clean_pg, "SELECT count(*) FROM invoice_lines") == 3 * ACCOUNTS  # stub + 2 full periods each
    assert scalar(clean_pg, "SELECT count(DISTINCT (subscription_id, period_start)) FROM invoice_lines") == 3 * ACCOUNTS
    assert scalar(clean_pg, "SELECT count(DISTINCT line_id) FROM balance_lines") == LINES
    assert scalar(clean_pg, "SELECT count(*) FROM parked_messages") == 0
    assert scalar(clean_pg, "SELECT count(*) FROM rejections") == 0
    assert scalar(clean_pg, "SELECT count(*) FROM processed_messages WHERE message_type IN "
                            "('account.onboard', 'balance_line.create')") == ACCOUNTS + LINES  # one key each
    numbers = scalar(clean_pg, "SELECT count(DISTINCT number) FROM invoices")
    highest = scalar(clean_pg, "SELECT max(CAST(split_part(number, '-', 3) AS int)) FROM invoices")
    assert numbers == highest == ACCOUNTS  # gapless: 1..600, each once
    assert scalar(clean_pg, "SELECT count(*) FROM outbox") == ACCOUNTS

    entries = redis.Redis.from_url(redis_url).xrange(f"{redis_namespace}:events:invoice")
    events = [json.loads(fields[b"event"]) for _, fields in entries]
    assert len(events) == ACCOUNTS
    assert len({event["id"] for event in events}) == ACCOUNTS
    assert {event["subject"] for event in events} == {f"acct-{n:04d}" for n in range(ACCOUNTS)}
    redeliveries = scalar(clean_pg, "SELECT coalesce(sum(deliveries - 1), 0) FROM message_deliveries")
    print(f"redelivered after the kills: {redeliveries}")
