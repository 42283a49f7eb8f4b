"""Messages that arrived before their account: parked, resumed on onboarding, rejected after a grace.

Queues are not ordered across message types, so a balance line may overtake the onboarding of its
account. It waits in the database (not in a broker delay, which a restart can lose or duplicate);
onboarding the account re-sends it at once, and after the grace period it is rejected
``unknown_account``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jobs import deliveries, rejections
from jobs.after_commit import on_commit
from jobs.context import JobContext
from jobs.outcomes import Outcome, RejectionCode
from jobs.pipeline import Received
from jobs.routes import envelope_message
from jobs.sending import Outgoing
from models.tables.account import Account
from models.tables.locks import lock_account
from models.tables.parked_message import ParkedMessage
from models.tables.store import is_postgres, table_of, transaction

log = structlog.get_logger(__name__)

REPLAY_OPTION = "billing_replay"
_ANY_PARKED = select(table_of(ParkedMessage).c.id).limit(1)


def park(session: Session, received: Received, account_id: str, grace: timedelta,
         ctx: JobContext | None = None) -> Outcome:
    """Keep the envelope until its account exists (idempotent per message id).

    With ``ctx``, once the parking commits the account is looked up again, and the line resumed at
    once if it exists now: an onboarding that committed in the same instant, before this line was
    visible to it, cannot strand it until a sweep (nor for ever, with no scheduler running).
    """
    envelope, now = received.envelope, received.now
    found = session.scalar(select(ParkedMessage.id).where(ParkedMessage.message_id == envelope.id))
    if found is None:
        session.add(ParkedMessage(
            message_id=envelope.id, account_id=account_id, message_type=envelope.type,
            envelope=json.dumps(received.raw), first_seen_at=now, retry_at=now + grace,
        ))
    log.info("message_parked", account_id=account_id, message_id=envelope.id)
    if ctx is not None:
        on_commit(session, lambda: _resume_if_onboarded(ctx, account_id))
    return Outcome.PARKED


def _resume_if_onboarded(ctx: JobContext, account_id: str) -> None:
    resume_if_onboarded(ctx, account_id)


def resume_if_onboarded(ctx: JobContext, account_id: str) -> int:
    """Resume what waits for ``account_id`` if the account exists now (after a parking committed)."""
    with transaction(ctx.sessions) as session:
        exists = session.get(Account, account_id) is not None
    return resume(ctx, account_id) if exists else 0


def resend(ctx: JobContext, kept: dict[str, Any], why: str) -> str:
    """Re-send a kept envelope (or a kept dramatiq message) in a new broker message; return its id.

    The new message is designated (committed) before it is enqueued, so the worker that picks it
    up accepts it as the envelope's carrier and not as a replayed copy. A crash in between only
    leaves the envelope to be re-sent again; idempotency keys make a second copy a no-op.
    """
    if "actor_name" in kept:  # a dead letter: the message itself, attempt history already dropped
        message = Outgoing(queue_name=kept["queue_name"], actor_name=kept["actor_name"], args=tuple(kept["args"]),
                           options={**kept.get("options", {}), REPLAY_OPTION: why})
    else:
        message = envelope_message(kept, {REPLAY_OPTION: why})
    envelope = message.args[0] if message.args and isinstance(message.args[0], dict) else {}
    if isinstance(envelope.get("id"), str):
        with transaction(ctx.sessions) as session:
            deliveries.designate(session, envelope["id"], message.message_id)
    ctx.sender.send(message)
    return message.message_id


def resume(ctx: JobContext, account_id: str) -> int:
    """Re-send what waited for ``account_id``; called after its onboarding (or a parking) committed.

    On PostgreSQL the account's lock is held (in a transaction of its own) while the rows are read,
    re-sent and deleted, so two resumes at once (the onboarding's and a parking's) never re-send one
    line twice: the second finds the rows gone. Each re-send is designated and committed before it
    is sent, and its row deleted after: a crash in between re-sends it again, which idempotency
    keys make a no-op. (SQLite runs one writer at a time and takes no lock.)
    """
    query = select(ParkedMessage.id, ParkedMessage.envelope).where(ParkedMessage.account_id == account_id)
    with transaction(ctx.sessions) as guard:
        if is_postgres(guard):
            lock_account(guard, account_id)
            rows = guard.execute(query).all()
        else:
            with transaction(ctx.sessions) as session:
                rows = session.execute(query).all()
        for row_id, envelope_json in rows:
            resend(ctx, json.loads(envelope_json), "parked")
            with transaction(ctx.sessions) as session:
                session.execute(delete(ParkedMessage).where(ParkedMessage.id == row_id))
    return len(rows)


def any_parked(session: Session) -> bool:
    """Whether any message waits for its account (one probe)."""
    return session.scalar(_ANY_PARKED) is not None


def sweep(ctx: JobContext, now: datetime) -> tuple[int, int]:
    """Resume parked messages whose account exists now; reject those past their grace period.

    Nothing is parked most of the time: one probe then answers, without the two searches.
    """
    with transaction(ctx.sessions) as session:
        if not any_parked(session):
            return 0, 0
        ready = session.scalars(
            select(ParkedMessage.account_id).join(Account, Account.id == ParkedMessage.account_id).distinct()
        ).all()
        expired = session.execute(
            select(ParkedMessage.id, ParkedMessage.envelope, ParkedMessage.account_id, ParkedMessage.message_type)
            .where(ParkedMessage.retry_at <= now, ParkedMessage.account_id.not_in(ready))
        ).all()
    resumed = sum(resume(ctx, account_id) for account_id in ready)
    for row_id, envelope_json, account_id, message_type in expired:
        rejections.record(
            ctx, json.loads(envelope_json), code=RejectionCode.UNKNOWN_ACCOUNT, now=now, message_type=message_type,
            reason=f"account {account_id} was not onboarded within the grace period; the message was not applied",
        )
        with transaction(ctx.sessions) as session:
            session.execute(delete(ParkedMessage).where(ParkedMessage.id == row_id))
    return resumed, len(expired)
