"""Dead letters as rejections: a message whose retries ran out, kept so ops can replay it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from jobs import rejections
from jobs.context import JobContext
from jobs.outcomes import RejectionCode
from models.tables.rejection import Rejection
from models.tables.store import transaction


def record(ctx: JobContext, kept: dict[str, Any], *, now: datetime, attempts: int, last_error: str,
           reason: str | None = None) -> bool:
    """Store a dead letter (a broker message as a dict) unless it is stored already; True when newly stored.

    ``kept`` is what a replay re-sends: queue, actor, arguments and options, without attempt history.
    ``reason`` replaces the "N attempts failed" sentence when the message never failed (it expired).
    """
    args = kept.get("args") or []
    envelope = args[0] if args and isinstance(args[0], dict) else None
    envelope_id = envelope.get("id") if envelope is not None else None
    message_id = envelope_id if isinstance(envelope_id, str) else kept.get("message_id")
    with transaction(ctx.sessions) as session:
        known = session.scalar(select(Rejection.id).where(
            Rejection.code == RejectionCode.RETRIES_EXHAUSTED, Rejection.replay_message_id.is_(None),
            Rejection.message_id == message_id,
        ))
    if known is not None:
        return False
    raw = envelope if envelope is not None else {"id": kept.get("message_id"), "actor": kept.get("actor_name"),
                                                  "args": list(args)}
    rejections.record(
        ctx, raw, code=RejectionCode.RETRIES_EXHAUSTED, now=now,
        message_type=envelope.get("type") if envelope else kept.get("actor_name"),
        reason=reason or f"{attempts} attempts failed; last error: {last_error}", kept=kept,
    )
    return True
