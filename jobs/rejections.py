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

from jobs import rejected_lines, verdicts
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


PAYLOAD_LIMIT = 65536
"""Stored payloads stay below this many characters, and always valid JSON."""
_PREVIEW_LIMIT = 60000


def payload_text(raw: Any) -> str:
    """The redacted payload as a JSON document; never raises, and never more than ``PAYLOAD_LIMIT``.

    A payload too large to keep whole is stored as a marker document with a redacted preview, so
    whoever reads it back (``billing dlq show``) still reads JSON.
    """
    try:
        text = json.dumps(redact_payload(raw), default=str, sort_keys=True)
    except Exception as error:  # too deep, unprintable, anything: the recorder must store something
        return json.dumps({"unprintable": type(raw).__name__, "error": type(error).__name__})
    if len(text) <= PAYLOAD_LIMIT:
        return text
    return json.dumps({"truncated": True, "characters": len(text), "preview": text[:_PREVIEW_LIMIT]})


def kept_document(raw: object, code: RejectionCode, kept: dict[str, Any] | None) -> str | None:
    """What a replay would re-send: ``kept`` when given, else the envelope as received for codes a
    replay can cure; None for the other codes and for garbage."""
    try:
        if kept is not None:
            return json.dumps(kept)
        if code not in REPLAYABLE or not isinstance(raw, dict) or not isinstance(raw.get("signature"), str):
            return None
        return json.dumps(raw)
    except Exception:  # unserialisable or too deep: there is nothing a replay could re-send
        return None


def _safe(action: Any, fallback: Any) -> Any:
    try:
        return action()
    except Exception:
        return fallback


def record(
    ctx: JobContext,
    raw: object,
    *,
    code: RejectionCode,
    reason: str,
    now: datetime,
    message_type: str | None = None,
    kept: dict[str, Any] | None = None,
    final: bool = False,
) -> RejectionRecord:
    """Store one rejection (and count and log it); never raises on what the payload holds.

    ``kept`` is what a replay re-sends, when it is not the envelope itself (a dead-lettered message).
    ``final`` makes the refusal the verdict of every later delivery of this authenticated envelope
    (not for codes a replay can cure). Only a database fault escapes: the message is then retried.
    """
    message_id, declared_type, producer = _safe(lambda: describe(raw), (None, None, None))
    kind = (message_type or declared_type or "")[:40] or None
    reason = _safe(lambda: scrub_values(str(reason)[:2000]), "the reason could not be written")
    registry = ctx.registry
    audit = _safe(lambda: rejected_lines.rows_for(raw, kind, registry, now), [])
    with transaction(ctx.sessions) as session:
        rejection_id = session.execute(insert(Rejection).returning(Rejection.id), [{
            "message_id": message_id, "message_type": kind, "producer": producer, "code": code,
            "reason": reason, "payload": payload_text(raw), "created_at": now,
            "envelope": kept_document(raw, code, kept),
        }]).scalar_one()
        rejected_lines.record(session, rejection_id, audit)
        if final and message_id is not None and code not in REPLAYABLE:
            verdicts.record(session, message_id, kind or "unknown", now)
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
