"""Rejected and quarantined messages: stored with a code, a reason and a redacted payload.

A rejection is final for the message (never retried). It is written in its own short
transaction, so the work transaction that failed leaves nothing behind. Where a replay can make
sense (a line that waited for an account, a message that kept killing its worker), the
untouched envelope is kept beside it as a parked message that ``billing dlq replay`` re-sends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import insert

from jobs import rejected_lines
from jobs.context import JobContext
from jobs.metrics import BALANCE_LINES, MESSAGES, REJECTIONS, producer_label
from jobs.outcomes import REPLAYABLE, Outcome, RejectionCode
from jobs.redaction import redact_payload, scrub_values
from jobs.routes import MESSAGE_TYPES
from models.tables.rejection import Rejection
from models.tables.store import transaction

log = structlog.get_logger(__name__)

@dataclass(frozen=True)
class RejectionRecord:
    code: RejectionCode
    reason: str
    message_id: str | None
    message_type: str | None
    producer: str | None


def describe(raw: object) -> tuple[str | None, str | None, str | None]:
    """Message id, type and producer of a raw envelope, as far as they can be read."""
    if not isinstance(raw, dict):
        return None, None, None

    def text(name: str) -> str | None:
        value = raw.get(name)
        return value[:64] if isinstance(value, str) else None

    return text("id"), text("type"), text("producer")


def payload_text(raw: Any) -> str:
    try:
        return json.dumps(redact_payload(raw), default=str, sort_keys=True)[:65536]
    except (TypeError, ValueError):
        return json.dumps({"unprintable": type(raw).__name__})


def kept_document(raw: object, code: RejectionCode, kept: dict[str, Any] | None) -> str | None:
    """What a replay would re-send: ``kept`` when given, else the envelope as received for codes a
    replay can cure; None for the other codes and for garbage."""
    if kept is not None:
        return json.dumps(kept)
    if code not in REPLAYABLE or not isinstance(raw, dict) or not isinstance(raw.get("signature"), str):
        return None
    return json.dumps(raw)


def record(
    ctx: JobContext,
    raw: object,
    *,
    code: RejectionCode,
    reason: str,
    now: datetime,
    message_type: str | None = None,
    kept: dict[str, Any] | None = None,
) -> RejectionRecord:
    """Store one rejection (and count and log it); never raises on what the payload holds.

    ``kept`` is what a replay re-sends, when it is not the envelope itself (a dead-lettered message).
    """
    message_id, declared_type, producer = describe(raw)
    kind = message_type or declared_type
    reason = scrub_values(reason)  # reasons may echo a value: never an e-mail or a key
    registry = ctx.registry
    audit = rejected_lines.rows_for(raw, kind, registry, now)
    with transaction(ctx.sessions) as session:
        rejection_id = session.execute(insert(Rejection).returning(Rejection.id), [{
            "message_id": message_id, "message_type": kind, "producer": producer, "code": code,
            "reason": reason, "payload": payload_text(raw), "created_at": now,
            "envelope": kept_document(raw, code, kept),
        }]).scalar_one()
        rejected_lines.record(session, rejection_id, audit)
    _count(code, kind, producer_label(producer, registry.producers), audit)
    log.warning("message_rejected", code=code, reason=reason, message_id=message_id, message_type=kind)
    return RejectionRecord(code, reason, message_id, kind, producer)


def _count(code: RejectionCode, message_type: str | None, producer: str, audit: list[dict[str, Any]]) -> None:
    """Rejections by code and producer, and refused balance lines by producer and kind.

    Labels come from closed sets only (configured producers, our kinds and types): a flood of
    forged messages naming random producers must not create a series each.
    """
    REJECTIONS.labels(code=code, producer=producer).inc()
    known_type = message_type if message_type in MESSAGE_TYPES else "unknown"
    outcome = Outcome.QUARANTINED if code is RejectionCode.QUARANTINED else Outcome.REJECTED
    MESSAGES.labels(type=known_type, outcome=outcome).inc()
    for row in audit:
        if row["line_id"] is not None:
            BALANCE_LINES.labels(producer=producer, kind=row["kind"] or "unknown", outcome="rejected").inc()
