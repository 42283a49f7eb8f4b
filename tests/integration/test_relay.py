"""The outbox relay on PostgreSQL and Redis: woken by commits, at least once, in order, same ids on resend."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, func, insert, select

from models.tables.outbox import OutboxEvent, new_event_id
from models.tables.store import make_session_factory
from worker.outbox import MemoryPublisher, RedisStreamPublisher, relay_once, run

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


def add_events(engine: Engine, accounts: Sequence[str]) -> list[str]:
    ids = [new_event_id() for _ in accounts]
    with engine.begin() as connection:
        connection.execute(insert(OutboxEvent), [
            {"event_id": event_id, "account_id": account, "event_type": "invoice.created",
             "payload": json.dumps({"number": f"INV-{n}"}), "created_at": NOW}
            for n, (event_id, account) in enumerate(zip(ids, accounts, strict=True))
        ])
    return ids


def unsent(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).where(OutboxEvent.sent_at.is_(None))).scalar_one())


@pytest.fixture
def relay_thread(clean_pg: Engine) -> Iterator[MemoryPublisher]:
    publisher, stop = MemoryPublisher(), threading.Event()
    sessions = make_session_factory(clean_pg)
    thread = threading.Thread(target=run, args=(sessions, publisher), daemon=True, kwargs={
        "source": "urn:test", "batch_size": 100, "interval": 30.0, "stop": stop, "clock": FixedClock()})
    thread.start()
    time.sleep(0.5)  # listening
    yield publisher
    stop.set()
    thread.join(35)


def test_a_commit_wakes_the_relay_long_before_its_poll_interval(
    relay_thread: MemoryPublisher, clean_pg: Engine
) -> None:
    ids = add_events(clean_pg, ["acme"])
    deadline = time.monotonic() + 5  # the relay's poll interval is 30 s: only the notification explains this
    while time.monotonic() < deadline and not relay_thread.events:
        time.sleep(0.02)
    assert [event["id"] for event in relay_thread.events] == ids


class FailingAfterPublish(MemoryPublisher):
    """Publishes, then dies before the relay can mark the rows sent (a crash between the two steps)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        super().publish(events)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("relay died after XADD")


def test_a_crash_between_publish_and_mark_resends_the_same_events_in_order(clean_pg: Engine) -> None:
    ids = add_events(clean_pg, ["acme", "zeta", "acme", "acme", "zeta"])
    sessions = make_session_factory(clean_pg)
    publisher = FailingAfterPublish()
    with pytest.raises(ConnectionError):
        relay_once(sessions, publisher, source="urn:test", batch_size=100, now=NOW)
    assert unsent(clean_pg) == 5  # nothing was marked: the events go again
    assert relay_once(sessions, publisher, source="urn:test", batch_size=100, now=NOW) == 5
    assert unsent(clean_pg) == 0
    assert [event["id"] for event in publisher.events] == ids + ids  # at least once, the same ids
    deduplicated = list(dict.fromkeys(event["id"] for event in publisher.events))
    assert deduplicated == ids  # a consumer deduplicating on id sees each event once, in order
    acme = [event["id"] for event in publisher.events[5:] if event["subject"] == "acme"]
    assert acme == [ids[0], ids[2], ids[3]]


def test_events_reach_a_redis_stream_consumer_group_as_cloudevents(
    clean_pg: Engine, redis_url: str, redis_namespace: str
) -> None:
    ids = add_events(clean_pg, ["acme", "zeta"])
    client = redis.Redis.from_url(redis_url)
    stream = f"{redis_namespace}:events:invoice"
    client.xgroup_create(stream, "payments", id="0", mkstream=True)
    published = relay_once(make_session_factory(clean_pg), RedisStreamPublisher(client, stream, 1000),
                           source="urn:billing-test", batch_size=100, now=NOW)
    assert published == 2
    [(_, entries)] = client.xreadgroup("payments", "reader-1", {stream: ">"}, count=10)
    events = [json.loads(fields[b"event"]) for _, fields in entries]
    assert [event["id"] for event in events] == ids
    assert {event["specversion"] for event in events} == {"1.0"}
    assert {event["source"] for event in events} == {"urn:billing-test"}
    assert [event["subject"] for event in events] == ["acme", "zeta"]
    assert events[0]["data"] == {"number": "INV-0"}


class CountingPublisher(MemoryPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.rounds: list[tuple[float, int]] = []

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        super().publish(events)
        self.rounds.append((time.monotonic(), len(events)))


def test_a_steady_stream_is_gathered_into_rounds_and_an_idle_relay_starts_at_once(clean_pg: Engine) -> None:
    publisher, stop = CountingPublisher(), threading.Event()
    thread = threading.Thread(target=run, args=(make_session_factory(clean_pg), publisher), daemon=True, kwargs={
        "source": "urn:test", "batch_size": 100, "interval": 30.0, "stop": stop, "clock": FixedClock(),
        "linger": 2.0})
    thread.start()
    try:
        time.sleep(0.5)  # listening
        sent = time.monotonic()
        add_events(clean_pg, ["first"])
        while not publisher.rounds and time.monotonic() - sent < 5:
            time.sleep(0.01)
        assert publisher.rounds and publisher.rounds[0][0] - sent < 0.8  # not held back by the linger
        for account in ("b", "c", "d", "e", "f"):
            add_events(clean_pg, [account])  # a stream: each commit notifies while the relay lingers
            time.sleep(0.02)
        while sum(size for _, size in publisher.rounds) < 6 and time.monotonic() - sent < 10:
            time.sleep(0.01)
        assert [size for _, size in publisher.rounds] == [1, 5]
    finally:
        stop.set()
        thread.join(35)
