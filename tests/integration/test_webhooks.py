"""Webhooks on PostgreSQL: the relay stages, the delivery loops send to local HTTP servers.

The receivers fail (500), time out and recover; every event arrives at least once, in order per
account, signed; a dead endpoint lands in the dead-letter list, ``billing webhooks replay`` re-sends
it and the account's held events follow; a dead endpoint delays neither another endpoint nor the
stream nor the outbox.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from jobs.metrics import REGISTRY
from models.tables.outbox import OutboxEvent, new_event_id
from models.tables.store import make_session_factory
from models.tables.webhook_delivery import WebhookDelivery
from tests.e2e.stack import billing, wait_for
from tests.webhook_receiver import Receiver, endpoints_json, receiving
from worker.outbox import MemoryPublisher, run
from worker.settings import Settings
from worker.webhooks import Endpoint, WebhookSink, load_endpoints, measure_pending, start_delivery

pytestmark = pytest.mark.integration

SECRET_A = "whsec-test-aaaaaaaaaaaaaaaa"
SECRET_B = "whsec-test-bbbbbbbbbbbbbbbb"


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def add_events(engine: Engine, accounts: Sequence[str]) -> list[str]:
    ids = [new_event_id() for _ in accounts]
    with engine.begin() as connection:
        connection.execute(insert(OutboxEvent), [
            {"event_id": event_id, "account_id": account, "event_type": "invoice.created",
             "payload": json.dumps({"n": n}), "created_at": datetime.now(UTC)}
            for n, (event_id, account) in enumerate(zip(ids, accounts, strict=True))
        ])
    return ids


def settings_for(endpoints: str, **overrides: float) -> Settings:
    values = {"webhook_timeout_seconds": 0.3, "webhook_min_backoff_seconds": 0.05,
              "webhook_max_backoff_seconds": 0.2, "webhook_retry_seconds": 60.0, **overrides}
    return Settings(webhooks_json=endpoints, **values)  # type: ignore[arg-type]


@contextmanager
def relay(sessions: sessionmaker[Session], settings: Settings) -> Iterator[MemoryPublisher]:
    """The relay process' duties in threads: outbox -> memory "stream" + webhook rows, and delivery loops."""
    publisher, stop = MemoryPublisher(), threading.Event()
    sink = WebhookSink(load_endpoints(settings), settings.webhook_retry_seconds)
    threads = start_delivery(sessions, sink, settings, stop)
    relay_thread = threading.Thread(target=run, args=(sessions, publisher), daemon=True, kwargs={
        "source": "urn:test", "batch_size": 100, "interval": 0.1, "stop": stop, "clock": RealClock(),
        "fanout": sink})
    relay_thread.start()
    try:
        yield publisher
    finally:
        stop.set()
        for thread in [relay_thread, *threads]:
            thread.join(10)


def assert_in_order_per_account(receiver: Receiver, ids: list[str], accounts: list[str]) -> None:
    """No request carries an account's event n+1 before event n was received at least once."""
    position = {event_id: n for n, event_id in enumerate(ids)}
    seen: set[str] = set()
    for request in receiver.all():
        event = request.event
        earlier = [ids[n] for n in range(position[event["id"]]) if accounts[n] == event["subject"]]
        assert set(earlier) <= seen, f"{event['id']} of {event['subject']} before its predecessors"
        seen.add(event["id"])


def counter(endpoint: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("billing_webhook_deliveries_total",
                                     {"endpoint": endpoint, "outcome": outcome}) or 0.0


def test_failures_and_timeouts_then_recovery_deliver_everything_in_order_signed(clean_pg: Engine) -> None:
    def flaky(number: int) -> tuple[int, float]:
        if number < 4:
            return 500, 0.0
        if number < 7:
            return 200, 1.0  # answers after the client's 0.3 s timeout
        return 200, 0.0

    accounts = ["acme", "zeta", "kilo"] * 4
    failed_before = counter("erp", "failed")
    with receiving(SECRET_A, flaky) as receiver:
        settings = settings_for(endpoints_json(("erp", receiver)))
        sessions = make_session_factory(clean_pg)
        with relay(sessions, settings) as stream:
            ids = add_events(clean_pg, accounts)
            wait_for(lambda: {r.event["id"] for r in receiver.answered_ok()} >= set(ids)
                     and len(receiver.answered_ok()) >= len(ids), 30, "every event answered 200")
            wait_for(lambda: delivered(clean_pg) == len(ids), 10, "every delivery marked delivered")
        assert [event["id"] for event in stream.events] == ids
    requests = receiver.all()
    assert len(requests) > len(ids)  # there were failures and timeouts, and they were retried
    assert all(receiver.signed(request) for request in requests)
    assert {request.headers["Content-Type"] for request in requests} == {"application/cloudevents+json"}
    assert_in_order_per_account(receiver, ids, accounts)
    assert counter("erp", "failed") - failed_before >= 4


def delivered(engine: Engine, endpoint: str | None = None) -> int:
    query = select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "delivered")
    if endpoint:
        query = query.where(WebhookDelivery.endpoint == endpoint)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def statuses(engine: Engine) -> list[tuple[int, str, str]]:
    with engine.connect() as connection:
        return [(row.id, row.account_id, row.status) for row in connection.execute(
            select(WebhookDelivery.id, WebhookDelivery.account_id, WebhookDelivery.status)
            .order_by(WebhookDelivery.id))]


def test_a_dead_endpoint_is_dead_lettered_and_a_replay_resends_it_in_order(
    clean_pg: Engine, pg_url: str, tmp_path: Path
) -> None:
    up = threading.Event()
    with receiving(SECRET_A, lambda _: (200, 0.0) if up.is_set() else (500, 0.0)) as receiver:
        document = endpoints_json(("erp", receiver))
        settings = settings_for(document, webhook_retry_seconds=1.0)
        sessions = make_session_factory(clean_pg)
        with relay(sessions, settings):
            ids = add_events(clean_pg, ["acme", "acme", "zeta"])
            wait_for(lambda: [s for _, _, s in statuses(clean_pg)] == ["dead", "pending", "dead"], 20,
                     "acme's first and zeta's event dead, acme's second held behind the first")
            assert ids[1] not in receiver.ids()  # never sent: it waits for the dead one
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("BILLING_")},
                   "BILLING_DATABASE_URL": pg_url, "BILLING_WEBHOOKS_JSON": document}
            listed = billing(env, "webhooks", "list").stdout
            dead_id = statuses(clean_pg)[0][0]
            assert f"{dead_id:>6}" in listed and "HTTP 500" in listed and "# erp: 2 dead" in listed
            shown = json.loads(billing(env, "webhooks", "show", str(dead_id)).stdout)
            assert (shown["status"], shown["event"]["id"], shown["account"]) == ("dead", ids[0], "acme")
            assert billing(env, "webhooks", "replay", str(dead_id + 1), check=False).returncode == 2  # pending

            up.set()
            time.sleep(1.0)
            assert ids[1] not in receiver.ids()  # recovery alone resends nothing: the dead wait for ops
            billing(env, "webhooks", "replay", str(dead_id))
            wait_for(lambda: [s for _, _, s in statuses(clean_pg)] == ["delivered", "delivered", "dead"], 20,
                     "the replayed delivery and the one held behind it")
    ok = [request.event["id"] for request in receiver.answered_ok()]
    assert ok == [ids[0], ids[1]]
    assert all(receiver.signed(request) for request in receiver.all())


def test_a_dead_endpoint_delays_neither_another_endpoint_nor_the_stream(clean_pg: Engine) -> None:
    accounts = [f"acct-{n % 10}" for n in range(30)]
    with receiving(SECRET_A, lambda _: (200, 3.0)) as hanging, receiving(SECRET_B) as healthy, \
            receiving(SECRET_B) as uninterested:
        settings = settings_for(endpoints_json(("hanging", hanging), ("healthy", healthy),
                                               ("other", uninterested, ["invoice.voided"])))
        sessions = make_session_factory(clean_pg)
        with relay(sessions, settings) as stream:
            started = time.monotonic()
            ids = add_events(clean_pg, accounts)
            wait_for(lambda: healthy.ids() == set(ids), 10, "every event at the healthy endpoint")
            took = time.monotonic() - started
            assert [event["id"] for event in stream.events] == ids
            with clean_pg.connect() as connection:
                unsent = connection.execute(select(func.count()).where(OutboxEvent.sent_at.is_(None))).scalar_one()
            assert unsent == 0
            assert delivered(clean_pg, "hanging") == 0
        assert took < 5, f"the healthy endpoint waited {took:.1f} s"
    assert_in_order_per_account(healthy, ids, accounts)
    assert uninterested.all() == []  # it asked for other event types
    assert all(healthy.signed(request) for request in healthy.all())


def test_the_pending_gauge_counts_undelivered_rows_per_configured_endpoint(clean_pg: Engine) -> None:
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    rows = [("alpha", "pending"), ("alpha", "dead"), ("alpha", "delivered"), ("beta", "delivered"),
            ("unconfigured", "pending")]
    with clean_pg.begin() as connection:
        connection.execute(insert(WebhookDelivery), [
            {"endpoint": endpoint, "event_id": new_event_id(), "event_type": "invoice.created", "account_id": "a",
             "body": "{}", "status": status, "next_attempt_at": now, "retry_until": now, "created_at": now}
            for endpoint, status in rows])
    endpoints = [Endpoint(name=name, url="http://127.0.0.1:9/hook", secret="s" * 32) for name in ("alpha", "beta")]
    assert measure_pending(make_session_factory(clean_pg), endpoints) == {"alpha": 2, "beta": 0}
    assert REGISTRY.get_sample_value("billing_webhook_pending", {"endpoint": "alpha"}) == 2
