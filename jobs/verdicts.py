"""A message's first verdict stands: a refused message stays refused on every redelivery.

Caps are judged at a moment (a rolling 24-hour cap, an account that exists or not); a message
refused once must not pass because the broker delivered it again later. The verdict is an
idempotency key (``jobs.idempotency``) claimed in the rejection's own transaction, keyed by the
envelope id, and only for authenticated messages (a forgery must not block the genuine envelope)
whose refusal a replay cannot cure (``jobs.outcomes.REPLAYABLE``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs import idempotency
from jobs.canonical import body_hash
from jobs.outcomes import Outcome
from models.tables.processed_message import ProcessedMessage
from models.tables.store import transaction


def verdict_key(envelope_id: str) -> str:
    return f"verdict:{envelope_id}"


def known(sessions: sessionmaker[Session], envelope_id: str) -> bool:
    """Whether this envelope was already refused for good."""
    with transaction(sessions) as session:
        found = session.scalar(select(ProcessedMessage.key).where(ProcessedMessage.key == verdict_key(envelope_id)))
    return found is not None


def record(session: Session, envelope_id: str, message_type: str, now: datetime) -> None:
    """Make the refusal of ``envelope_id`` final (in the rejection's transaction)."""
    idempotency.claim(session, verdict_key(envelope_id), message_type=message_type[:40], message_id=envelope_id,
                      body_hash=body_hash(envelope_id), now=now, what=f"the verdict on message {envelope_id}",
                      outcome=Outcome.REJECTED)
