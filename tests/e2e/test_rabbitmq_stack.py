"""The stack on RabbitMQ (``BILLING_BROKER_URL=amqp://...``): `billing worker` and `billing relay` processes.

- the seed's scenario A on a rehearsal clock, with the events on the RabbitMQ topic exchange and the
  invoice as a signed webhook on a local endpoint (the README's walkthrough);
- the worker SIGKILLed twice mid-run: nothing lost, nothing doubled (RabbitMQ hands a killed
  consumer's unacknowledged messages back as soon as its connection drops);
- the broker's connections cut (a proxy in front of RabbitMQ): nothing lost, nothing doubled.
Each test has a virtual host of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from sqlalchemy import Engine, text

from tests.conftest import amqp_url
from tests.e2e.stack import billing, onboarding, running, scalar, stack_environment, wait_for
from tests.e2e.tcp_proxy import TcpProxy
from tests.webhook_receiver import endpoints_json, receiving

pytestmark = pytest.mark.e2e

SEED = Path(__file__).resolve().parents[2] / "examples" / "acme-onboard.json"
WEBHOOK_SECRET = "whsec-e2e-0123456789abcdef"


def bind_events_queue(url: str) -> None:
    """A consumer's durable queue on the topic exchange (bound before the relay publishes)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare("billing.events", exchange_type="topic", durable=True)
    channel.queue_declare("accounting", durable=True)
    channel.queue_bind("accounting", "billing.events", routing_key="invoice.created")
    connection.close()


def drain_events(url: str) -> list[dict[str, Any]]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    events = []
    while (got := channel.basic_get("accounting", auto_ack=True))[0] is not None:
        events.append(json.loads(got[2]))
    connection.close()
    return events


def events_waiting(url: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    count = int(connection.channel().queue_declare("accounting", passive=True).method.message_count)
    connection.close()
    return count


def test_seed_scenario_on_rabbitmq_arrives_as_a_signed_webhook(
    clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str, rabbitmq_url: str, tmp_path: Path
) -> None:
    bind_events_queue(rabbitmq_url)
    with receiving(WEBHOOK_SECRET) as receiver:
        env = stack_environment(pg_url, redis_url, redis_namespace, clock_start="2018-11-30T10:00:00Z",
                                broker_url=rabbitmq_url, event_sink="rabbitmq",
                                webhooks_json=endpoints_json(("local", receiver)))
        env["BILLING_REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing here needs Redis: one that is not there
        with running(env, tmp_path / "stack.log", ["worker", "--processes", "1", "--threads", "2"], ["relay"]):
            billing(env, "enqueue", "account.onboard", str(SEED))
            wait_for(lambda: len(receiver.answered_ok()) == 1, 60, "the invoice.created webhook")
            status = json.loads(billing(env, "status", "--json").stdout)
            health = billing(env, "health", check=False)
    [request] = receiver.all()
    assert receiver.signed(request)
    event = request.event
    assert (event["type"], event["subject"], event["data"]["number"], event["data"]["total"]) == (
        "invoice.created", "acme", "INV-2018-000001", "70.00")
    [published] = drain_events(rabbitmq_url)
    assert published == event
    with clean_pg.connect() as connection:
        number, issued, total = connection.execute(text("SELECT number, issue_date, total_minor FROM invoices")).one()
    assert (number, str(issued), total) == ("INV-2018-000001", "2018-11-30", 7000)
    assert scalar(clean_pg, "SELECT count(*) FROM rejections") == 0
    assert status["queues"]["onboarding"] == {"waiting": 0, "delayed": 0, "dead": 0}
    assert health.returncode == 0 and json.loads(health.stdout)["checks"] == {"database": "ok", "rabbitmq": "ok"}


ACCOUNTS = 200
LINES = 100


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
            [sys.executable, "-m", "worker.cli", "worker", "--processes", "2", "--threads", "2"],
            env=self.env, stdout=self.log, stderr=self.log, start_new_session=True)

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
def workers(tmp_path: Path) -> Iterator[list[Workers]]:
    started: list[Workers] = []
    yield started
    for each in started:
        each.stop()


def assert_each_once(engine: Engine, accounts: int, events: list[dict[str, Any]]) -> None:
    assert scalar(engine, "SELECT count(*) FROM invoices") == accounts
    assert scalar(engine, "SELECT count(DISTINCT account_id) FROM invoices") == accounts
    assert scalar(engine, "SELECT count(*) FROM invoice_lines") == 3 * accounts
    assert scalar(engine, "SELECT count(DISTINCT (subscription_id, period_start)) FROM invoice_lines") == 3 * accounts
    assert scalar(engine, "SELECT count(*) FROM rejections") == 0
    numbers = scalar(engine, "SELECT count(DISTINCT number) FROM invoices")
    highest = scalar(engine, "SELECT max(CAST(split_part(number, '-', 3) AS int)) FROM invoices")
    assert numbers == highest == accounts  # gapless
    assert scalar(engine, "SELECT count(*) FROM outbox") == accounts
    assert {event["subject"] for event in events} == {f"acct-{n:04d}" for n in range(accounts)}
    assert len({event["id"] for event in events}) == accounts


@pytest.mark.slow
def test_two_sigkills_on_rabbitmq_lose_nothing_and_double_nothing(
    workers: list[Workers], clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str,
    rabbitmq_url: str, tmp_path: Path,
) -> None:
    bind_events_queue(rabbitmq_url)
    env = stack_environment(pg_url, redis_url, redis_namespace, broker_url=rabbitmq_url, event_sink="rabbitmq")
    onboardings = tmp_path / "onboard.jsonl"
    onboardings.write_text("".join(json.dumps(onboarding(f"acct-{n:04d}")) + "\n" for n in range(ACCOUNTS)))
    credits = tmp_path / "credits.jsonl"
    credits.write_text("".join(json.dumps(credit(n)) + "\n" for n in range(LINES)))
    billing(env, "enqueue", "account.onboard", str(onboardings))
    billing(env, "enqueue", "balance_line.create", str(credits))

    invoices = lambda: scalar(clean_pg, "SELECT count(*) FROM invoices")  # noqa: E731
    at_kills = []
    current = Workers(env, tmp_path / "worker.log")
    workers.append(current)
    with running(env, tmp_path / "relay.log", ["relay"]):
        current.start()
        for threshold in (40, 110):
            wait_for(lambda: invoices() >= threshold, 90, f"{threshold} invoices")  # noqa: B023 - used at once
            current.kill()
            at_kills.append(invoices())
            current.start()
        assert all(count < ACCOUNTS for count in at_kills), f"a kill came after the run had finished: {at_kills}"
        recorded = "SELECT (SELECT count(*) FROM balance_lines) + (SELECT count(*) FROM parked_messages)"
        wait_for(lambda: invoices() == ACCOUNTS and scalar(clean_pg, recorded) >= LINES, 120,
                 "every message after the second kill")
        billing(env, "scheduler", "--once")  # re-sends lines parked by an onboarding killed after its commit
        wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM balance_lines") == LINES, 60, "every credit line")
        wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
                 and events_waiting(rabbitmq_url) >= ACCOUNTS, 60, "the relay")
    events = drain_events(rabbitmq_url)
    assert len(events) == ACCOUNTS
    assert_each_once(clean_pg, ACCOUNTS, events)
    assert scalar(clean_pg, "SELECT count(DISTINCT line_id) FROM balance_lines") == LINES
    assert scalar(clean_pg, "SELECT count(*) FROM parked_messages") == 0
    # (the scheduler's run also sent a bill-run trigger: not counted here)
    assert scalar(clean_pg, "SELECT count(*) FROM processed_messages WHERE message_type IN "
                            "('account.onboard', 'balance_line.create')") == ACCOUNTS + LINES
    redeliveries = scalar(clean_pg, "SELECT coalesce(sum(deliveries - 1), 0) FROM message_deliveries")
    print(f"kills at {at_kills} invoices; redelivered after the kills: {redeliveries}")


@pytest.fixture
def proxy(rabbitmq_available: None) -> Iterator[TcpProxy]:
    proxy = TcpProxy(5672)
    yield proxy
    proxy.close()


def test_a_broker_outage_loses_nothing_and_doubles_nothing(
    proxy: TcpProxy, clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str, rabbitmq_vhost: str,
    tmp_path: Path,
) -> None:
    direct, cut = amqp_url(rabbitmq_vhost), amqp_url(rabbitmq_vhost, proxy.port)
    bind_events_queue(direct)
    # Worker and relay reach RabbitMQ through the proxy: consumers, acks, follow-ups and events all see the cut.
    env = stack_environment(pg_url, redis_url, redis_namespace, broker_url=cut, event_sink="rabbitmq",
                            min_backoff_ms="200", max_backoff_ms="2000", max_retries="8")
    sender = {**env, "BILLING_BROKER_URL": direct}
    accounts = 120
    bodies = tmp_path / "onboard.jsonl"
    bodies.write_text("".join(json.dumps(onboarding(f"acct-{n:04d}")) + "\n" for n in range(accounts)))
    billing(sender, "enqueue", "account.onboard", str(bodies))
    with running(env, tmp_path / "stack.log", ["worker", "--processes", "1", "--threads", "4"], ["relay"]):
        wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM invoices") >= 20, 60, "the first invoices")
        proxy.cut()
        at_cut = scalar(clean_pg, "SELECT count(*) FROM invoices")
        time.sleep(3)
        proxy.restore()
        assert at_cut < accounts, "the cut came after the run had finished"
        wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM invoices") == accounts, 120, "every invoice")
        wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0, 60, "the relay")
    events = drain_events(direct)
    assert_each_once(clean_pg, accounts, events)  # duplicates on the exchange are allowed (same ids)
    assert scalar(clean_pg, "SELECT count(*) FROM processed_messages") == accounts
