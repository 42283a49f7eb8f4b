"""Dead letters in the database: messages whose retries ran out are recorded where ops look.

dramatiq moves a message that failed its last retry to the queue's Redis dead-letter set, where
it expires after seven days and no `billing dlq` sees it. ``DeadLetterRecorder`` records each one
as a ``retries_exhausted`` rejection the moment it is dead-lettered and takes it out of Redis;
when the database is what failed (the usual reason retries run out), the message stays in Redis
and ``sweep`` (run by the scheduler every minute) records it once the database is back.
"""

from __future__ import annotations

import re
import traceback
from datetime import UTC, datetime
from typing import Any

import dramatiq
import redis
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from worker.db import transaction
from worker.logging import scrub_text

log = structlog.get_logger(__name__)

CODE = "retries_exhausted"
DROPPED_OPTIONS = frozenset({"traceback", "retries", "requeue_timestamp", "redis_message_id", "eta"})
"""Options that describe past attempts (the traceback may quote personal data): not kept, not replayed."""


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Timeout)\w*: ")


def last_error(message: dramatiq.Message[Any]) -> str:
    """The exception line of the last traceback (type and text), scrubbed of secrets."""
    lines = str(message.options.get("traceback") or "").strip().splitlines()
    found = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return scrub_text((found or lines or ["unknown error"])[-1])[:500]


def kept_message(message: dramatiq.Message[Any]) -> dict[str, Any]:
    """The message as it can be replayed: its queue, actor and arguments, without attempt history."""
    document = message.asdict()
    document["options"] = {k: v for k, v in message.options.items() if k not in DROPPED_OPTIONS}
    return document


def record(sessions: sessionmaker[Session], message: dramatiq.Message[Any], now: datetime, attempts: int) -> bool:
    """Store the dead letter as a rejection unless it is stored already; True when newly stored."""
    from jobs import rejections
    from models.tables.rejection import Rejection

    envelope = message.args[0] if message.args and isinstance(message.args[0], dict) else None
    envelope_id = envelope.get("id") if envelope is not None else None
    with transaction(sessions) as session:
        known = session.scalar(select(Rejection.id).where(
            Rejection.code == CODE, Rejection.replay_message_id.is_(None),
            Rejection.message_id == (envelope_id if isinstance(envelope_id, str) else message.message_id),
        ))
    if known is not None:
        return False
    raw = envelope if envelope is not None else {"id": message.message_id, "actor": message.actor_name,
                                                  "args": list(message.args)}
    rejections.record(
        sessions, raw, code=CODE, now=now, message_type=envelope.get("type") if envelope else message.actor_name,
        reason=f"{attempts} attempts failed; last error: {last_error(message)}",
        kept=kept_message(message),
    )
    return True


def forget(client: redis.Redis, namespace: str, message: dramatiq.Message[Any]) -> None:
    """Remove a recorded dead letter from the queue's Redis dead-letter set."""
    redis_id = message.options.get("redis_message_id", message.message_id)
    xqueue = f"{namespace}:{dramatiq.common.xq_name(message.queue_name)}"
    client.hdel(f"{xqueue}.msgs", redis_id)
    client.zrem(xqueue, redis_id)


class DeadLetterRecorder(Middleware):
    """Records each dead-lettered message in the database (best effort; ``sweep`` catches up)."""

    def after_nack(self, broker: dramatiq.Broker, proxy: MessageProxy) -> None:
        from jobs import runtime

        message: dramatiq.Message[Any] = proxy._message
        try:
            record(runtime.get().sessions, message, datetime.now(UTC), attempts=message.options.get("retries", 0))
        except SQLAlchemyError:
            log.warning("dead_letter_not_recorded_yet", message_id=message.message_id, queue=message.queue_name,
                        error=traceback.format_exc(limit=1).strip().splitlines()[-1])
            return
        client = getattr(broker, "client", None)
        if isinstance(client, redis.Redis):
            forget(client, getattr(broker, "namespace", ""), message)


def sweep(client: redis.Redis, namespace: str, queues: tuple[str, ...], sessions: sessionmaker[Session],
          now: datetime) -> int:
    """Record every dead letter still in Redis, then remove it there; return how many were recorded."""
    recorded = 0
    for queue in queues:
        for redis_id, data in client.hgetall(f"{namespace}:{dramatiq.common.xq_name(queue)}.msgs").items():
            try:
                message = dramatiq.Message.decode(data if isinstance(data, bytes) else data.encode())
            except dramatiq.errors.DecodeError:
                log.warning("dead_letter_undecodable", queue=queue, redis_message_id=redis_id)
                continue
            message.options["redis_message_id"] = redis_id.decode() if isinstance(redis_id, bytes) else redis_id
            # Redis keeps the copy enqueued for the last attempt: one retry fewer than were made.
            recorded += record(sessions, message, now, attempts=message.options.get("retries", 0) + 1)
            forget(client, namespace, message)
    return recorded
