"""RabbitMQ as the broker and as an event sink, on the machine's RabbitMQ (a virtual host per test).

The broker the settings build (publisher confirms, durable queues, persistent messages), the
client's fallback from the pipelined Redis path, queue depths by passive declares, the sweep that
drains dramatiq's ``.XQ`` dead-letter queues into the database, and the topic exchange sink.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import Engine, insert, text

from jobs.routes import QUEUES
from jobs.signer import Signer
from models.tables.outbox import OutboxEvent, new_event_id
from models.tables.store import make_session_factory
from tests.e2e.stack import SECRET, onboarding
from worker.broker import build_broker
from worker.client import build_message, send_many
from worker.context import build_context, dispose
from worker.dead_letters import sweep_rabbitmq
from worker.gauges import rabbitmq_queue_depths
from worker.health import check_configured
from worker.outbox import RabbitmqExchangePublisher, relay_once
from worker.settings import Settings

pytestmark = pytest.mark.integration


def signer() -> Signer:
    return Signer(producer="crm", key_id="crm-1", secret=SECRET.encode())


def test_the_configured_broker_confirms_and_the_client_enqueues_one_by_one(rabbitmq_url: str) -> None:
    broker = build_broker(Settings(broker_url=rabbitmq_url))
    try:
        assert isinstance(broker, RabbitmqBroker) and broker.confirm_delivery
        sent = send_many(broker, (("account.onboard", onboarding(f"acct-{n}")) for n in range(5)), signer(),
                         now=datetime.now(UTC), batch_size=2)
        assert sent == 5
        depths = rabbitmq_queue_depths(rabbitmq_url)
        assert depths["onboarding"] == {"waiting": 5, "delayed": 0, "dead": 0}
        assert set(depths) == set(QUEUES)  # queues never declared count 0, and are not created
        channel = pika.BlockingConnection(pika.URLParameters(rabbitmq_url)).channel()
        declared = channel.queue_declare("onboarding", passive=True)
        assert declared.method.message_count == 5
        _, properties, _ = channel.basic_get("onboarding", auto_ack=True)
        assert properties.delivery_mode == 2  # persistent
        channel.connection.close()
    finally:
        broker.close()


def test_health_checks_rabbitmq_instead_of_redis(rabbitmq_url: str, sqlite_url: str) -> None:
    from models.tables.store import make_engine

    engine = make_engine(sqlite_url)
    report = check_configured(engine, Settings(broker_url=rabbitmq_url, event_sink="rabbitmq"))
    assert report.checks == {"database": "ok", "rabbitmq": "ok"}
    bad = check_configured(engine, Settings(broker_url=rabbitmq_url.rsplit("/", 1)[0] + "/no-such-vhost",
                                            event_sink="none"))
    assert not bad.ok and bad.checks["rabbitmq"] != "ok"


def test_the_sweep_drains_dead_letter_queues_into_the_database(
    clean_pg: Engine, pg_url: str, rabbitmq_url: str
) -> None:
    settings = Settings(broker_url=rabbitmq_url, database_url=pg_url)
    broker = build_broker(settings)
    ctx = build_context(settings, broker)
    try:
        message = build_message(signer().envelope("account.onboard", onboarding("patient"), now=datetime.now(UTC)))
        message.options.update(retries=2, traceback="psycopg.OperationalError: connection refused")
        broker.declare_queue("onboarding", ensure=True)
        channel = broker.channel
        channel.basic_publish("", "onboarding.XQ", message.encode(), pika.BasicProperties(delivery_mode=2))
        assert rabbitmq_queue_depths(rabbitmq_url)["onboarding"]["dead"] == 1

        assert sweep_rabbitmq(ctx, rabbitmq_url, QUEUES, datetime.now(UTC)) == 1
        assert rabbitmq_queue_depths(rabbitmq_url)["onboarding"]["dead"] == 0
        with clean_pg.connect() as connection:
            code, reason = connection.execute(text("SELECT code, reason FROM rejections")).one()
        assert code == "retries_exhausted" and reason.startswith("3 attempts failed")

        # Recorded already (by the middleware, at the nack): taken out of RabbitMQ, not recorded twice.
        channel.basic_publish("", "onboarding.XQ", message.encode(), pika.BasicProperties(delivery_mode=2))
        assert sweep_rabbitmq(ctx, rabbitmq_url, QUEUES, datetime.now(UTC)) == 0
        assert rabbitmq_queue_depths(rabbitmq_url)["onboarding"]["dead"] == 0
        with clean_pg.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM rejections")).scalar_one() == 1
    finally:
        broker.close()
        dispose(ctx)


def test_events_reach_a_queue_bound_to_the_topic_exchange(clean_pg: Engine, rabbitmq_url: str) -> None:
    ids = [new_event_id() for _ in range(3)]
    with clean_pg.begin() as connection:
        connection.execute(insert(OutboxEvent), [
            {"event_id": event_id, "account_id": account, "event_type": "invoice.created",
             "payload": json.dumps({"n": n}), "created_at": datetime.now(UTC)}
            for n, (event_id, account) in enumerate(zip(ids, ["acme", "zeta", "acme"], strict=True))])
    connection_ = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection_.channel()
    channel.exchange_declare("billing.events", exchange_type="topic", durable=True)
    channel.queue_declare("payments", durable=True)
    channel.queue_bind("payments", "billing.events", routing_key="invoice.*")
    publisher = RabbitmqExchangePublisher(rabbitmq_url, "billing.events")
    try:
        sent = relay_once(make_session_factory(clean_pg), publisher, source="urn:test", batch_size=10,
                          now=datetime.now(UTC))
        assert sent == 3
        publisher.connection.close()  # type: ignore[union-attr]  # a connection lost while idle is reopened
        publisher.publish([{"id": "extra", "type": "invoice.created", "subject": "acme"}])
        received = []
        while (got := channel.basic_get("payments", auto_ack=True))[0] is not None:
            method, properties, body = got
            received.append((method.routing_key, properties.message_id, properties.delivery_mode, json.loads(body)))
    finally:
        publisher.close()
        connection_.close()
    assert [r[1] for r in received] == [*ids, "extra"]
    assert {r[0] for r in received} == {"invoice.created"} and {r[2] for r in received} == {2}
    assert [r[3]["subject"] for r in received[:3]] == ["acme", "zeta", "acme"]
