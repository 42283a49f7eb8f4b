"""The main path on real services: `billing enqueue` → a `billing worker` process → PostgreSQL,
and `billing relay` → the Redis Stream. Also: redelivery, a forged signature, undecodable bytes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, func, select, text

from models.tables.invoice import Invoice
from models.tables.invoice_line import InvoiceLine
from models.tables.rejection import Rejection
from tests.e2e.stack import SECRET, billing, onboarding, running, scalar, stack_environment, wait_for

pytestmark = pytest.mark.e2e

@pytest.fixture
def stack_env(clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str) -> dict[str, str]:
    return stack_environment(pg_url, redis_url, redis_namespace, log_format="json")


@pytest.fixture
def processes(stack_env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    with running(stack_env, tmp_path / "stack.log", ["worker", "--processes", "1", "--threads", "2"], ["relay"]):
        yield


def stream_events(redis_url: str, namespace: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(redis_url)
    entries = client.xrange(f"{namespace}:events:invoice")
    return [json.loads(fields[b"event"]) for _, fields in entries]


def test_onboarding_reaches_the_database_and_the_stream_once(
    processes: None, stack_env: dict[str, str], clean_pg: Engine, redis_url: str, redis_namespace: str,
    tmp_path: Path,
) -> None:
    body = tmp_path / "acme.json"
    body.write_text(json.dumps(onboarding("acme")))
    billing(stack_env, "enqueue", "account.onboard", str(body))
    wait_for(lambda: scalar(clean_pg, select(func.count()).select_from(Invoice)) == 1)
    wait_for(lambda: len(stream_events(redis_url, redis_namespace)) == 1)
    event = stream_events(redis_url, redis_namespace)[0]
    assert event["type"] == "invoice.created" and event["subject"] == "acme" and event["specversion"] == "1.0"
    with clean_pg.connect() as connection:
        number, total = connection.execute(select(Invoice.number, Invoice.total_minor)).one()
        stub_days = connection.execute(
            select(InvoiceLine.days).where(InvoiceLine.kind == "recurring").order_by(InvoiceLine.period_start)
        ).scalars().first()
    assert event["data"]["number"] == number and event["data"]["total"] == f"{total / 100:.2f}"
    assert stub_days == 10  # the 5th to the 14th, then full periods from the 15th

    billing(stack_env, "enqueue", "account.onboard", str(body))  # the same message body again
    wait_for(lambda: scalar(clean_pg, text("SELECT count(*) FROM message_deliveries")) == 2)
    time.sleep(1.0)
    assert scalar(clean_pg, select(func.count()).select_from(Invoice)) == 1
    assert len(stream_events(redis_url, redis_namespace)) == 1


def test_garbage_and_forgeries_are_rejected_without_stalling_the_queue(
    processes: None, stack_env: dict[str, str], clean_pg: Engine, redis_url: str, redis_namespace: str,
    tmp_path: Path,
) -> None:
    client = redis.Redis.from_url(redis_url)
    queue = f"{redis_namespace}:dramatiq:onboarding"
    for garbage in (b"\xff\xfe not json", b"[1, 2, 3]", b'{"actor_name": "nope"}'):
        message_id = str(uuid.uuid4())
        client.hset(f"{queue}.msgs", message_id, garbage)
        client.rpush(queue, message_id)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(onboarding("forged")))
    env = dict(stack_env, BILLING_PRODUCER_SECRET="not-the-right-secret-at-all")
    billing(env, "enqueue", "account.onboard", str(forged))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(onboarding("good")))
    billing(stack_env, "enqueue", "account.onboard", str(good))

    wait_for(lambda: scalar(clean_pg, select(func.count()).select_from(Invoice)) == 1)
    wait_for(lambda: scalar(clean_pg, select(func.count()).select_from(Rejection)) == 4)
    with clean_pg.connect() as connection:
        codes = sorted(connection.execute(select(Rejection.code)).scalars())
        payloads = " ".join(connection.execute(select(Rejection.payload)).scalars())
    assert codes == ["quarantined", "quarantined", "quarantined", "unauthorized"]
    assert SECRET not in payloads and "not-the-right-secret-at-all" not in payloads


def test_a_bill_run_refuses_a_date_in_the_future(
    processes: None, stack_env: dict[str, str], clean_pg: Engine,
) -> None:
    future = (date.today() + timedelta(days=10)).isoformat()
    billing(stack_env, "bill-run", "--date", future)
    wait_for(lambda: scalar(clean_pg, select(func.count()).select_from(Rejection)) == 1)
    with clean_pg.connect() as connection:
        reason = connection.execute(select(Rejection.reason)).scalar_one()
    assert "date" in reason and "never bills ahead" in reason
