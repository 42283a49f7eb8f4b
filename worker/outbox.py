"""The outbox relay: invoice events leave the database for their sinks, at least once, in order.

The invoice and its outbox row commit together; this relay numbers the invoices of unsent rows
(``jobs.numbering``), claims the rows in id order, hands each as a CloudEvents 1.0 document to the
primary sink (a ``Publisher``: the Redis Stream by default, or a RabbitMQ topic exchange, or none),
stages it for the webhook endpoints (``worker.webhooks.WebhookSink``, rows delivered later by their
own loops), then marks them sent. A crash between the steps resends (consumers deduplicate on
``source`` + ``id``); nothing is ever lost. One relay publishes at a time (an advisory lock on
PostgreSQL), which keeps every account's events in order even with several relay processes running
for availability.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from sqlalchemy import Engine, Table, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobs.clock import Clock
from jobs.metrics import EVENTS_PUBLISHED, OUTBOX_LAG, OUTBOX_PENDING
from jobs.numbering import number_pending
from models.tables.invoice import Invoice
from models.tables.locks import LockSpace, try_lock
from models.tables.outbox import OutboxEvent
from models.tables.store import is_postgres, transaction

if TYPE_CHECKING:  # the client libraries load where their sink is used (`billing simulate` uses none)
    import pika
    import psycopg
    import redis

log = structlog.get_logger(__name__)

RELAY_LOCK_KEY = "outbox-relay"
"""Advisory lock id held by the publishing relay for the length of one batch."""


class Publisher(Protocol):
    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        """Deliver every event or raise; never a partial success that looks like success."""
        ...


class RedisStreamPublisher:
    """Appends events to a Redis Stream (readers use consumer groups), capped near ``maxlen``."""

    def __init__(self, client: redis.Redis, stream: str, maxlen: int) -> None:
        self.client, self.stream, self.maxlen = client, stream, maxlen

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            fields: dict[Any, Any] = {"id": event["id"], "type": event["type"], "event": json.dumps(event)}
            pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
        pipe.execute()


class RabbitmqExchangePublisher:
    """Publishes events to a durable topic exchange, routing key = event type, with publisher confirms.

    Each message is persistent, with the CloudEvent's id as ``message_id``; ``publish`` returns once
    RabbitMQ has confirmed every one. Consumers bind their own durable queues (``invoice.created``,
    ``invoice.#``, ``#``); an event that no queue is bound for is dropped by RabbitMQ, as a topic
    exchange does. A connection found closed (an idle one times out) is opened again once.
    """

    def __init__(self, url: str, exchange: str) -> None:
        import pika

        self.parameters, self.exchange = pika.URLParameters(url), exchange
        self.connection: pika.BlockingConnection | None = None
        self.channel: Any = None

    def _open(self) -> Any:
        import pika

        if self.connection is None or self.connection.is_closed:
            self.connection = pika.BlockingConnection(self.parameters)
            self.channel = None
        if self.channel is None or self.channel.is_closed:
            self.channel = self.connection.channel()
            self.channel.confirm_delivery()
            self.channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        return self.channel

    def _send(self, events: Sequence[dict[str, Any]]) -> None:
        import pika

        channel = self._open()
        for event in events:
            channel.basic_publish(self.exchange, event["type"], json.dumps(event).encode(), pika.BasicProperties(
                delivery_mode=2, content_type="application/cloudevents+json", message_id=event["id"],
                type=event["type"]))

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        import pika.exceptions

        try:
            self._send(events)
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError):
            self.close()
            self._send(events)  # at least once: what was confirmed before the failure is sent again

    def close(self) -> None:
        import pika.exceptions

        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):
                connection.close()


class NullPublisher:
    """No primary sink (``BILLING_EVENT_SINK=none``): the webhooks are the only consumers."""

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        return None


class Fanout(Protocol):
    """Secondary sinks that take events in the relay's own transaction (the webhooks' delivery rows)."""

    def stage(self, session: Session, events: Sequence[dict[str, Any]]) -> None: ...

    def staged(self) -> None:
        """Called after the commit."""
        ...


class MemoryPublisher:
    """Keeps events in a list: ``billing simulate`` and tests."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        self.events.extend(events)


def cloud_event(row: Any, source: str, number: str | None = None) -> dict[str, Any]:
    """The CloudEvents 1.0 document of an outbox row; ``number`` is its invoice's, given at publication."""
    data = json.loads(row.payload)
    if number is not None:
        data["number"] = number
    return {
        "specversion": "1.0",
        "type": row.event_type,
        "source": source,
        "id": row.event_id,
        "subject": row.account_id,
        "time": row.created_at.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }


def _publishing(session: Session) -> bool:
    """Take the publishing lock for this transaction (PostgreSQL); False if another relay has it."""
    if not is_postgres(session):
        return True  # SQLite: one writer at a time anyway
    return try_lock(session, LockSpace.RELAY, RELAY_LOCK_KEY)


def relay_once(sessions: sessionmaker[Session], publisher: Publisher, *, source: str, batch_size: int,
               now: datetime, invoice_prefix: str = "INV", fanout: Fanout | None = None) -> int:
    """Number the next invoices, then publish up to ``batch_size`` unsent events in order; return how many.

    Numbering commits first, in its own short transaction: a number, once given, is the one every
    copy of the event carries, even when publishing fails and is tried again. The rows are marked
    sent once the primary sink has the events and ``fanout`` has staged them, in one transaction.
    """
    with transaction(sessions) as session:
        if not _publishing(session):
            return 0
        number_pending(session, invoice_prefix, batch_size)
    with transaction(sessions) as session:
        if not _publishing(session):
            return 0
        outbox = OutboxEvent.__table__.c
        query = (select(outbox.id, outbox.event_id, outbox.event_type, outbox.account_id, outbox.created_at,
                        outbox.payload, outbox.invoice_id, Invoice.number)
                 .outerjoin(Invoice, Invoice.id == outbox.invoice_id)
                 .where(outbox.sent_at.is_(None)).order_by(outbox.id).limit(batch_size))
        if is_postgres(session):
            query = query.with_for_update(of=OutboxEvent.__table__, skip_locked=True)
        rows = list(session.execute(query).all())
        # An event committed since the numbering waits for the next round, and so does what follows it.
        unnumbered = next((n for n, row in enumerate(rows) if row.invoice_id and row.number is None), len(rows))
        rows = rows[:unnumbered]
        if not rows:
            return 0
        events = [cloud_event(row, source, row.number) for row in rows]
        if fanout is not None:
            fanout.stage(session, events)  # rolled back with the rest if the publication fails
        publisher.publish(events)
        sent = [row.id for row in rows]
        table = OutboxEvent.__table__
        assert isinstance(table, Table)
        session.execute(update(table).where(outbox.id.in_(sent)).values(sent_at=now))
    EVENTS_PUBLISHED.inc(len(rows))
    if fanout is not None:
        fanout.staged()
    return len(rows)


def measure_lag(sessions: sessionmaker[Session], now: datetime) -> tuple[int, float]:
    """Unsent events and the age in seconds of the oldest one (0 when none)."""
    with transaction(sessions) as session:
        pending, oldest = session.execute(
            select(func.count(), func.min(OutboxEvent.created_at)).where(OutboxEvent.sent_at.is_(None))
        ).one()
    lag = (now - oldest).total_seconds() if oldest is not None else 0.0
    OUTBOX_PENDING.set(pending)
    OUTBOX_LAG.set(lag)
    return int(pending), lag


NOTIFY_CHANNEL = "billing_outbox"
"""Notified at commit by a trigger on the outbox (PostgreSQL; see migration 0005)."""


class OutboxWakeup:
    """Waits for the next outbox commit: LISTEN on PostgreSQL, plain polling elsewhere.

    A notification cuts the wait short; the timeout remains as a safety net (a notification missed
    while reconnecting costs one interval, never an event). Any trouble with the listening
    connection falls back to polling until it can be opened again.
    """

    def __init__(self, engine: Engine, stop: threading.Event) -> None:
        self.stop = stop
        self.conninfo = (engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
                         if engine.dialect.name == "postgresql" else None)
        self.connection: psycopg.Connection[Any] | None = None

    def _listening(self) -> psycopg.Connection[Any] | None:
        if self.conninfo is None:
            return None
        import psycopg

        if self.connection is None or self.connection.closed:
            try:
                self.connection = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
                self.connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            except psycopg.Error:
                log.warning("relay_listen_unavailable", exc_info=True)
                self.connection = None
        return self.connection

    def wait(self, timeout: float) -> None:
        connection = self._listening()
        if connection is None:
            self.stop.wait(timeout)
            return
        import psycopg
        deadline = time.monotonic() + timeout
        try:
            while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
                # Slices of a second at most, so a stop request is seen promptly.
                if any(True for _ in connection.notifies(timeout=min(left, 1.0), stop_after=1)):
                    return
        except psycopg.Error:
            log.warning("relay_listen_lost", exc_info=True)
            connection.close()
            self.stop.wait(min(timeout, 1.0))

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


LAG_REFRESH_SECONDS = 1.0
"""How often the backlog gauges are measured: far finer than any scrape, one query a second at most."""


def run(sessions: sessionmaker[Session], publisher: Publisher, *, source: str, batch_size: int,
        interval: float, stop: threading.Event, clock: Clock, invoice_prefix: str = "INV",
        fanout: Fanout | None = None, linger: float = 0.0) -> None:
    """Relay until ``stop`` is set; errors are logged and retried, never fatal.

    After a round that published some events but not a full batch, the relay waits ``linger``
    seconds before the next: under a steady stream each round then carries the events of that
    span, not the one event the last commit notified (a round costs three transactions).
    An idle relay is not delayed: the first commit's notification starts a round at once.
    """
    bind = sessions.kw.get("bind")
    wakeup = OutboxWakeup(bind, stop) if isinstance(bind, Engine) else None
    measured = -LAG_REFRESH_SECONDS
    try:
        while not stop.is_set():
            try:
                sent = relay_once(sessions, publisher, source=source, batch_size=batch_size, now=clock.now(),
                                  invoice_prefix=invoice_prefix, fanout=fanout)
                if time.monotonic() - measured >= LAG_REFRESH_SECONDS:
                    measure_lag(sessions, clock.now())
                    measured = time.monotonic()
            except Exception:
                log.exception("relay_failed")
                sent = 0
            if 0 < sent < batch_size and linger > 0:
                stop.wait(linger)
            if sent < batch_size:
                if wakeup is not None:
                    wakeup.wait(interval)
                else:
                    stop.wait(interval)
    finally:
        if wakeup is not None:
            wakeup.close()
