"""What every message goes through before and after its handler's own work.

verify the signed envelope → count the delivery → parse the body → one transaction for the
handler → record the outcome. Bad messages become rejections (stored, never retried); only
infrastructure faults escape, so the broker retries them with backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from jobs import deliveries, rejections, verdicts
from jobs.context import BrokerDelivery, JobContext
from jobs.envelope import Envelope, verify, verify_times
from jobs.errors import Rejected, Unauthorized
from jobs.limits import check_envelope
from jobs.metrics import MESSAGE_SECONDS, MESSAGES
from jobs.outcomes import Outcome, RejectionCode
from jobs.schemas import parse_body
from models.billing.errors import BillingError
from models.tables.store import transaction

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Received:
    """A verified message as handlers see it: the envelope, its raw form (as signed) and "now"."""

    envelope: Envelope
    raw: dict[str, Any]
    now: datetime


Handler = Callable[[JobContext, Session, Received, Any], Outcome]
"""A handler gets the context, the open session, the received message and its parsed body; it
returns its outcome."""


def raw_dict(raw: object) -> dict[str, Any]:
    """The raw envelope as a dict (``verify`` has already refused anything else)."""
    assert isinstance(raw, dict)
    return dict(raw)


def _verified(ctx: JobContext, raw: object, delivery: BrokerDelivery, now: datetime) -> tuple[Envelope, datetime]:
    """The envelope and the instant its time rules were judged at: when the worker first saw this carrier.

    Never the broker's timestamp: whoever enqueues sets it. A redelivery (or the worker's own
    re-send of a parked line or a dead letter) keeps the first delivery's instant, so retries do not
    turn a good message stale. Most messages are on their first delivery, so the envelope is
    verified against the worker's clock ``now`` and the first sighting is looked up only when that
    fails; a redelivery that passes at ``now`` is judged again at its first sighting once its
    delivery count reports it (``_judged_again``).
    """
    tolerance = ctx.settings.signature_tolerance_seconds
    try:
        return verify(raw, ctx.registry, now=now, tolerance_seconds=tolerance), now
    except Unauthorized:
        envelope_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(envelope_id, str) or len(envelope_id) > 64:
            raise
        first = deliveries.first_seen(ctx.sessions, envelope_id, delivery.message_id)
        if first is None or first == now:
            raise
        return verify(raw, ctx.registry, now=first, tolerance_seconds=tolerance), first


def _judged_again(ctx: JobContext, envelope: Envelope, raw: object, judged_at: datetime,
                  counted: deliveries.Delivery) -> None:
    """A redelivery's time rules at the instant of its first delivery, if it was judged at another (``_verified``)."""
    if counted.first_seen_at is not None and counted.first_seen_at != judged_at:
        verify_times(envelope, raw_dict(raw), ctx.registry, now=counted.first_seen_at,
                     tolerance_seconds=ctx.settings.signature_tolerance_seconds)


def receive(ctx: JobContext, message_type: str, raw: object, handler: Handler, delivery: BrokerDelivery) -> Outcome:
    """Run ``handler`` for one raw envelope; return the outcome. Raises only transient faults."""
    now = ctx.now()
    started = time.perf_counter()
    envelope_id = raw.get("id") if isinstance(raw, dict) else None
    structlog.contextvars.bind_contextvars(message_id=envelope_id if isinstance(envelope_id, str) else None,
                                           message_type=message_type)
    final = False  # whether a rejection is this authenticated message's verdict for every redelivery
    try:
        settings = ctx.settings
        check_envelope(raw, max_bytes=settings.max_envelope_bytes, max_depth=settings.max_json_depth)
        seen_at = ctx.trusted_now()
        envelope, judged_at = _verified(ctx, raw, delivery, seen_at)
        if envelope.type != message_type:
            raise Unauthorized(f"a {envelope.type} envelope was sent to the {message_type} actor")
        counted = deliveries.count(ctx.sessions, envelope.id, message_type, delivery.message_id, seen_at)
        if counted.is_copy_of_another(delivery.message_id):
            raise Unauthorized(f"message id {envelope.id} was already received: a replayed copy is refused")
        _judged_again(ctx, envelope, raw, judged_at, counted)
        if counted.deliveries > 1 and verdicts.known(ctx.sessions, envelope.id):  # a first delivery has none
            log.info("message_verdict_stands", message_id=envelope.id, message_type=message_type)
            MESSAGES.labels(type=message_type, outcome=Outcome.REJECTED).inc()
            return Outcome.REJECTED
        final = True
        if counted.deliveries > settings.max_deliveries:
            rejections.record(ctx, raw, code=RejectionCode.QUARANTINED, now=now, message_type=message_type,
                              reason=f"delivered {counted.deliveries} times without finishing "
                                     f"(max_deliveries = {settings.max_deliveries})")
            return Outcome.QUARANTINED
        body = parse_body(message_type, envelope.body)
        with transaction(ctx.sessions) as session:
            outcome = handler(ctx, session, Received(envelope, raw_dict(raw), now), body)
    except (Rejected, BillingError) as exc:
        rejections.record(ctx, raw, code=RejectionCode(exc.code), reason=str(exc), now=now, message_type=message_type,
                          final=final)
        return Outcome.REJECTED
    except OverflowError as exc:  # date or number arithmetic past its range: a domain error, never transient
        rejections.record(ctx, raw, code=RejectionCode.INVALID, now=now, message_type=message_type, final=final,
                          reason=f"body: a date or amount is outside what can be computed ({exc})")
        return Outcome.REJECTED
    except Exception as exc:  # transient: the broker retries it with backoff, or dead-letters it at the end
        MESSAGES.labels(type=message_type, outcome=Outcome.FAILED).inc()
        log.warning("message_failed", error=f"{type(exc).__name__}: {exc}"[:500], message_type=message_type)
        raise
    finally:
        MESSAGE_SECONDS.labels(type=message_type).observe(time.perf_counter() - started)
        structlog.contextvars.unbind_contextvars("message_id", "message_type")
    MESSAGES.labels(type=message_type, outcome=outcome).inc()
    log.info("message_handled", outcome=outcome, message_id=envelope.id, message_type=message_type)
    return outcome
