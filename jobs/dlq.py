"""Rejected messages as ops see them (``billing dlq``): listed, shown, and replayed once."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import select, update

from jobs.context import JobContext
from jobs.parking import resend
from models.tables.rejection import Rejection
from models.tables.store import transaction


class NotReplayable(Exception):
    """The rejection cannot be replayed; the message says why, for a person."""


def latest(ctx: JobContext, *, code: str | None, limit: int) -> Sequence[Rejection]:
    with transaction(ctx.sessions) as session:
        query = select(Rejection).order_by(Rejection.id.desc()).limit(limit)
        if code:
            query = query.where(Rejection.code == code)
        return session.scalars(query).all()


def find(ctx: JobContext, rejection_id: int) -> Rejection | None:
    with transaction(ctx.sessions) as session:
        return session.get(Rejection, rejection_id)


def replay(ctx: JobContext, rejection_id: int) -> str:
    """Re-send a rejected message whose original was kept (``jobs.outcomes.REPLAYABLE``); its new broker id."""
    with transaction(ctx.sessions) as session:
        row = session.get(Rejection, rejection_id)
        if row is None:
            raise NotReplayable(f"no rejection {rejection_id}")
        if row.envelope is None:
            raise NotReplayable(f"rejection {row.id} ({row.code}) kept no original to replay; the producer must "
                                "send a corrected message")
        if row.replayed_at is not None:
            raise NotReplayable(f"rejection {row.id} was already replayed at {row.replayed_at:%Y-%m-%d %H:%M:%S} "
                                f"as broker message {row.replay_message_id}")
        envelope = json.loads(row.envelope)
    message_id = resend(ctx, envelope, f"dlq:{rejection_id}")
    with transaction(ctx.sessions) as session:
        session.execute(update(Rejection).where(Rejection.id == rejection_id)
                        .values(replayed_at=ctx.now(), replay_message_id=message_id, envelope=None))
    return message_id
