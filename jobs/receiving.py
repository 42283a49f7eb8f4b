"""What every actor does with a message before and after its own work.

verify the signed envelope → count the delivery → parse the body → one transaction for the
handler → record the outcome. Bad messages become rejections (stored, never retried); only
infrastructure faults escape, so dramatiq retries them with backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from dramatiq.middleware import CurrentMessage
from sqlalchemy.orm import Session

from jobs import deliveries, rejections, runtime
from jobs.envelope import Envelope, verify
from jobs.errors import Rejected, Unauthorized
from jobs.schemas import parse_body
from models.billing.errors import BillingError
from worker import clock
from worker.db import transaction
from worker.metrics import MESSAGE_SECONDS, MESSAGES

log = structlog.get_logger(__name__)



@dataclass(frozen=True)
class Received:
    """A verified message as handlers see it: the envelope, its raw form (as signed) and "now"."""

    envelope: Envelope
    raw: dict[str, Any]
    now: datetime


Handler = Callable[[Session, Received, Any], str]
"""A handler gets the open session, the received message and its parsed body; it returns its
outcome (processed, duplicate, parked, ...)."""


def _broker_context(now: datetime) -> tuple[datetime, str, bool]:
    """When the producer enqueued the message, its broker id, and whether ops replayed it."""
    message = CurrentMessage.get_current_message()
    if message is None:
        return now, "direct", False
    enqueued = datetime.fromtimestamp(message.message_timestamp / 1000, UTC)
    return enqueued, message.message_id, bool(message.options.get("billing_replay"))


def raw_dict(raw: object) -> dict[str, Any]:
    """The raw envelope as a dict (``verify`` has already refused anything else)."""
    assert isinstance(raw, dict)
    return dict(raw)


def receive(message_type: str, raw: object, handler: Handler) -> str:
    """Run ``handler`` for one raw envelope; return the outcome. Raises only transient faults."""
    rt = runtime.get()
    now = clock.current().now()
    enqueued_at, broker_message_id, replayed = _broker_context(now)
    started = time.perf_counter()
    envelope_id = raw.get("id") if isinstance(raw, dict) else None
    structlog.contextvars.bind_contextvars(message_id=envelope_id, message_type=message_type)
    try:
        judged_at = enqueued_at
        if replayed and isinstance(envelope_id, str):  # a re-send the worker designated: judged as first received
            judged_at = deliveries.first_seen(rt.sessions, envelope_id, broker_message_id) or enqueued_at
        envelope = verify(raw, rt.registry, now=judged_at, tolerance_seconds=rt.settings.signature_tolerance_seconds)
        if envelope.type != message_type:
            raise Unauthorized(f"a {envelope.type} envelope was sent to the {message_type} actor")
        delivery = deliveries.count(rt.sessions, envelope.id, message_type, broker_message_id, enqueued_at)
        if delivery.is_copy_of_another(broker_message_id):
            raise Unauthorized(f"message id {envelope.id} was already received: a replayed copy is refused")
        if delivery.deliveries > rt.settings.max_deliveries:
            rejections.record(rt.sessions, raw, code="quarantined", now=now, message_type=message_type,
                              reason=f"delivered {delivery.deliveries} times without finishing "
                                     f"(max_deliveries = {rt.settings.max_deliveries})")
            return "quarantined"
        body = parse_body(message_type, envelope.body)
        with transaction(rt.sessions) as session:
            outcome = handler(session, Received(envelope, raw_dict(raw), now), body)
    except (Rejected, BillingError) as exc:
        rejections.record(rt.sessions, raw, code=exc.code, reason=str(exc), now=now, message_type=message_type)
        return "rejected"
    except Exception as exc:  # transient: dramatiq retries it with backoff, or dead-letters it at the end
        MESSAGES.labels(type=message_type, outcome="failed").inc()
        log.warning("message_failed", error=f"{type(exc).__name__}: {exc}"[:500], message_type=message_type)
        raise
    finally:
        MESSAGE_SECONDS.labels(type=message_type).observe(time.perf_counter() - started)
        structlog.contextvars.unbind_contextvars("message_id", "message_type")
    MESSAGES.labels(type=message_type, outcome=outcome).inc()
    log.info("message_handled", outcome=outcome, message_id=envelope.id, message_type=message_type)
    return outcome
