"""Webhooks: every event POSTed, signed, to each configured endpoint, retried, in order per account.

The relay stages one ``webhook_deliveries`` row per (endpoint, event) in the transaction that marks
the outbox row sent (``WebhookSink.stage``), so the outbox never waits for an endpoint. A delivery
loop per endpoint (``run_endpoint``, threads of the relay process) sends them:

- the body is the CloudEvent JSON, byte for byte the same on every attempt, with the header
  ``Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the endpoint's secret>``
  (Stripe's scheme; ``t`` is the attempt's real time, so a receiver can refuse stale replays);
- a 2xx answer within ``webhook_timeout_seconds`` delivers it; anything else (an error status, a
  timeout, a refused connection) is retried with exponential backoff, from
  ``webhook_min_backoff_seconds`` doubling up to ``webhook_max_backoff_seconds``, until
  ``webhook_retry_seconds`` have passed; then it is dead (``billing webhooks list``) until replayed;
- only an account's oldest undelivered row on an endpoint is sent, so an endpoint never receives an
  account's next event before the previous one, and a dead one holds the account's later events
  on that endpoint (and only there) until it is replayed;
- on PostgreSQL an endpoint's loop holds an advisory lock while it sends, so with several relays
  one sends per endpoint at a time; each endpoint has its own thread and HTTP client, so one that
  is down or slow delays no other endpoint, no other sink and no outbox row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from models.tables.locks import LockSpace, try_lock
from models.tables.store import is_postgres, table_of, transaction, upsert
from models.tables.webhook_delivery import DeliveryStatus, WebhookDelivery
from worker.metrics import WEBHOOK_DELIVERIES, WEBHOOK_OUTCOMES, WEBHOOK_PENDING
from worker.settings import Settings

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "Billing-Signature"
CONTENT_TYPE = "application/cloudevents+json"
ROUND_SIZE = 50
"""Deliveries sent per round of an endpoint (at most one per account, so a round may go in parallel)."""
PARALLEL = 4
IDLE_SECONDS = 0.5


class Endpoint(BaseModel):
    """One configured receiver. ``name`` is its label in metrics and commands (a closed set)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    url: HttpUrl
    secret: str = Field(min_length=16, repr=False)
    types: tuple[str, ...] | None = Field(default=None, description="event types it receives; None: all")

    def wants(self, event_type: str) -> bool:
        return self.types is None or event_type in self.types


class WebhookConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoints: tuple[Endpoint, ...] = ()


class WebhookConfigError(ValueError):
    pass


def load_endpoints(settings: Settings) -> tuple[Endpoint, ...]:
    """The endpoints of ``webhooks_file`` and ``webhooks_json`` (none when neither is set); names are unique."""
    documents: list[str] = []
    if settings.webhooks_file is not None:
        documents.append(Path(settings.webhooks_file).read_text(encoding="utf-8"))
    if settings.webhooks_json:
        documents.append(settings.webhooks_json)
    endpoints: list[Endpoint] = []
    for document in documents:
        try:
            endpoints += WebhookConfig.model_validate_json(document).endpoints
        except ValidationError as exc:
            raise WebhookConfigError(f"webhook endpoints: {exc}") from None
    names = [endpoint.name for endpoint in endpoints]
    if len(set(names)) != len(names):
        raise WebhookConfigError(f"webhook endpoint names must be unique: {names}")
    return tuple(endpoints)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Billing-Signature`` value: ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance: float = 300) -> bool:
    """What a receiver does (the reference for ``docs/webhooks.md``): constant-time compare, fresh ``t``."""
    pairs = [part.strip().split("=", 1) for part in header.split(",") if "=" in part]
    try:
        timestamp = int(next(value for key, value in pairs if key == "t"))
    except (StopIteration, ValueError):
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    candidates = [value for key, value in pairs if key == "v1"]
    fresh = abs(now - timestamp) <= tolerance
    return fresh and any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def event_body(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def wall_clock() -> datetime:
    """Deliveries run on real time, in rehearsals too: receivers judge ``t`` against their own clock."""
    return datetime.now(UTC)


class WebhookSink:
    """Stages each event for every endpoint that wants it, in the relay's transaction; wakes the loops."""

    def __init__(self, endpoints: Sequence[Endpoint], retry_seconds: float) -> None:
        self.endpoints = tuple(endpoints)
        self.retry = timedelta(seconds=retry_seconds)
        self.wake = {endpoint.name: threading.Event() for endpoint in self.endpoints}

    def stage(self, session: Session, events: Sequence[dict[str, Any]]) -> None:
        now = wall_clock()
        rows = [{"endpoint": endpoint.name, "event_id": event["id"], "event_type": event["type"],
                 "account_id": event.get("subject") or "", "body": event_body(event),
                 "status": DeliveryStatus.PENDING, "attempts": 0, "next_attempt_at": now,
                 "retry_until": now + self.retry, "created_at": now}
                for event in events for endpoint in self.endpoints if endpoint.wants(event["type"])]
        if rows:  # a resend after a crash finds its rows staged already
            statement = upsert(session, table_of(WebhookDelivery)).on_conflict_do_nothing(
                index_elements=["endpoint", "event_id"])
            session.execute(statement, rows)

    def staged(self) -> None:
        """After the relay's commit: the loops need not wait for their next poll."""
        for event in self.wake.values():
            event.set()


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    ok: bool
    error: str | None


def backoff(attempts: int, minimum: float, maximum: float) -> float:
    """Seconds before attempt ``attempts + 1``: ``minimum`` doubling per failed attempt, capped."""
    return float(min(maximum, minimum * 2 ** max(0, attempts - 1)))


def post(client: httpx.Client, endpoint: Endpoint, delivery: WebhookDelivery) -> Attempt:
    """One signed POST; a 2xx answer is success, anything else an error worth retrying."""
    body = delivery.body.encode()
    headers = {"Content-Type": CONTENT_TYPE, "User-Agent": "billing-worker-webhooks",
               SIGNATURE_HEADER: signature(endpoint.secret, int(time.time()), body),
               "Billing-Event-Id": delivery.event_id}
    try:
        response = client.post(str(endpoint.url), content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Attempt(delivery.id, False, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return Attempt(delivery.id, True, None)
    return Attempt(delivery.id, False, f"HTTP {response.status_code}: {response.text[:200]}")


def due(session: Session, endpoint: str, now: datetime, limit: int) -> list[WebhookDelivery]:
    """The endpoint's deliveries due now that are their account's oldest undelivered one there."""
    earlier = aliased(WebhookDelivery)
    waiting_behind = (select(earlier.id).where(
        earlier.endpoint == WebhookDelivery.endpoint, earlier.account_id == WebhookDelivery.account_id,
        earlier.status != DeliveryStatus.DELIVERED, earlier.id < WebhookDelivery.id).exists())
    return list(session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint == endpoint,
                                      WebhookDelivery.status == DeliveryStatus.PENDING,
                                      WebhookDelivery.next_attempt_at <= now, ~waiting_behind)
        .order_by(WebhookDelivery.id).limit(limit)))


@contextmanager
def endpoint_lock(sessions: sessionmaker[Session], name: str) -> Iterator[bool]:
    """On PostgreSQL, hold the endpoint's advisory lock in a transaction of its own (False: another
    relay has it); SQLite has one relay and needs none (and must not hold its write lock while sending)."""
    bind = sessions.kw.get("bind")
    if not (isinstance(bind, Engine) and bind.dialect.name == "postgresql"):
        yield True
        return
    with transaction(sessions) as session:
        yield try_lock(session, LockSpace.RELAY, f"webhooks:{name}")


def deliver_round(sessions: sessionmaker[Session], endpoint: Endpoint, client: httpx.Client,
                  settings: Settings, pool: ThreadPoolExecutor | None = None) -> int:
    """Send what is due on one endpoint (one delivery per account at most); return how many were tried."""
    with endpoint_lock(sessions, endpoint.name) as held:
        if not held:
            return 0
        with transaction(sessions) as session:
            batch = due(session, endpoint.name, wall_clock(), ROUND_SIZE)
        if not batch:
            return 0
        attempts = list(pool.map(lambda d: post(client, endpoint, d), batch) if pool
                        else (post(client, endpoint, d) for d in batch))
        record_attempts(sessions, batch, attempts, settings)
    return len(batch)


def record_attempts(sessions: sessionmaker[Session], batch: Sequence[WebhookDelivery],
                    attempts: Sequence[Attempt], settings: Settings) -> None:
    now = wall_clock()
    table = table_of(WebhookDelivery)
    by_id = {delivery.id: delivery for delivery in batch}
    with transaction(sessions) as session:
        for attempt in attempts:
            delivery = by_id[attempt.delivery_id]
            tries = delivery.attempts + 1
            values: dict[str, Any]
            if attempt.ok:
                outcome, values = "delivered", {"status": DeliveryStatus.DELIVERED, "delivered_at": now}
            elif now >= delivery.retry_until:
                outcome, values = "dead", {"status": DeliveryStatus.DEAD}
                log.warning("webhook_dead", endpoint=delivery.endpoint, delivery=delivery.id, attempts=tries,
                            error=attempt.error)
            else:
                wait = backoff(tries, settings.webhook_min_backoff_seconds, settings.webhook_max_backoff_seconds)
                outcome, values = "failed", {"next_attempt_at": now + timedelta(seconds=wait)}
            session.execute(update(table).where(table.c.id == delivery.id)
                            .values(attempts=tries, last_error=attempt.error, **values))
            WEBHOOK_DELIVERIES.labels(endpoint=delivery.endpoint, outcome=outcome).inc()


def measure_pending(sessions: sessionmaker[Session], endpoints: Sequence[Endpoint]) -> dict[str, int]:
    """``billing_webhook_pending{endpoint}``: undelivered (pending or dead) rows per configured endpoint."""
    names = [endpoint.name for endpoint in endpoints]
    with transaction(sessions) as session:
        counts = {endpoint: pending for endpoint, pending in session.execute(
            select(WebhookDelivery.endpoint, func.count()).where(
                WebhookDelivery.endpoint.in_(names), WebhookDelivery.status != DeliveryStatus.DELIVERED)
            .group_by(WebhookDelivery.endpoint))}
    for name in names:
        WEBHOOK_PENDING.labels(endpoint=name).set(counts.get(name, 0))
    return {name: int(counts.get(name, 0)) for name in names}


def run_endpoint(sessions: sessionmaker[Session], endpoint: Endpoint, settings: Settings, stop: threading.Event,
                 wake: threading.Event | None = None) -> None:
    """Deliver to one endpoint until ``stop`` is set; errors are logged and retried, never fatal."""
    for outcome in WEBHOOK_OUTCOMES:  # closed set: zeros exported from the start
        WEBHOOK_DELIVERIES.labels(endpoint=endpoint.name, outcome=outcome)
    wake = wake or threading.Event()
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client, \
            ThreadPoolExecutor(PARALLEL, thread_name_prefix=f"webhook-{endpoint.name}") as pool:
        while not stop.is_set():
            try:
                sent = deliver_round(sessions, endpoint, client, settings, pool)
            except Exception:
                log.exception("webhook_round_failed", endpoint=endpoint.name)
                sent = 0
            if sent < ROUND_SIZE:
                wake.wait(IDLE_SECONDS)
                wake.clear()


def start_delivery(sessions: sessionmaker[Session], sink: WebhookSink, settings: Settings,
                   stop: threading.Event) -> list[threading.Thread]:
    """One daemon thread per endpoint (and one sampling the pending gauge), started."""
    threads = [threading.Thread(target=run_endpoint, daemon=True, name=f"webhook-{endpoint.name}",
                                args=(sessions, endpoint, settings, stop, sink.wake[endpoint.name]))
               for endpoint in sink.endpoints]

    def sample() -> None:
        while not stop.is_set():
            try:
                measure_pending(sessions, sink.endpoints)
            except Exception:
                log.warning("webhook_pending_not_sampled", exc_info=True)
            stop.wait(10.0)

    if sink.endpoints:
        threads.append(threading.Thread(target=sample, daemon=True, name="webhook-pending"))
    for thread in threads:
        thread.start()
    return threads


class NotReplayable(ValueError):
    pass


def replay(sessions: sessionmaker[Session], delivery_id: int, settings: Settings) -> WebhookDelivery:
    """Make a dead delivery pending again, due now, with a fresh retry period."""
    now = wall_clock()
    with transaction(sessions) as session:
        delivery = session.get(WebhookDelivery, delivery_id, with_for_update=is_postgres(session))
        if delivery is None:
            raise NotReplayable(f"no webhook delivery {delivery_id}")
        if delivery.status != DeliveryStatus.DEAD:
            raise NotReplayable(f"webhook delivery {delivery_id} is {delivery.status}, not dead")
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = now
        delivery.retry_until = now + timedelta(seconds=settings.webhook_retry_seconds)
        delivery.replayed_at = now
    return delivery
