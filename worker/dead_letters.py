"""Dead letters in the database: messages whose retries ran out are recorded where ops look.

dramatiq moves a message that failed its last retry to the queue's Redis dead-letter set, where
it expires after seven days and no `billing dlq` sees it. ``DeadLetterRecorder`` records each one
as a ``retries_exhausted`` rejection the moment it is dead-lettered and takes it out of Redis;
when the database is what failed (the usual reason retries run out), the message stays in Redis
and ``sweep`` (run by the scheduler every minute) records it once the database is back.

On RabbitMQ dramatiq's nack dead-letters the message to the queue ``<queue>.XQ`` (kept there for
seven days). The recorder stores it just the same, but one message cannot be taken out of the
middle of a RabbitMQ queue: ``sweep_rabbitmq`` drains those queues instead, recording what is not
recorded yet and acknowledging each message only once the database has it.
"""

from __future__ import annotations

import re
import sys
import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from sqlalchemy.exc import SQLAlchemyError

from jobs import dead_letters
from jobs.context import JobContext
from jobs.redaction import scrub_text
from jobs.routes import QUARANTINE

if TYPE_CHECKING:  # redis and pika load with their broker (`billing simulate` uses neither)
    import redis

log = structlog.get_logger(__name__)

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


def expiry(message: dramatiq.Message[Any], now: datetime, max_age_ms: int | None) -> str | None:
    """Why a message that never failed was dropped: its age past the limit; None when it failed."""
    if message.options.get("traceback") or max_age_ms is None:
        return None
    age_ms = int(now.timestamp() * 1000) - int(message.message_timestamp)
    if age_ms < max_age_ms:
        return None
    return (f"expired unprocessed: it was {_duration(age_ms)} old, above the age limit of {_duration(max_age_ms)} "
            "(by the broker's timestamp); it was never attempted")


def _duration(ms: int) -> str:
    seconds = max(0, ms) // 1000
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds} s"


def record(ctx: JobContext, message: dramatiq.Message[Any], now: datetime, attempts: int,
           max_age_ms: int | None = None) -> bool:
    """Store the dead letter as a rejection unless it is stored already; True when newly stored."""
    return dead_letters.record(ctx, kept_message(message), now=now, attempts=attempts,
                               last_error=last_error(message), reason=expiry(message, now, max_age_ms))


def forget(client: redis.Redis, namespace: str, message: dramatiq.Message[Any], queue: str | None = None) -> None:
    """Remove a recorded dead letter from the Redis dead-letter set of ``queue`` (default: the message's)."""
    redis_id = message.options.get("redis_message_id", message.message_id)
    xqueue = f"{namespace}:{dramatiq.common.xq_name(queue or message.queue_name)}"
    client.hdel(f"{xqueue}.msgs", redis_id)
    client.zrem(xqueue, redis_id)


class DeadLetterRecorder(Middleware):
    """Records each dead-lettered message in the database (best effort; ``sweep`` catches up)."""

    def __init__(self, ctx: JobContext, max_age_ms: int | None = None) -> None:
        self.ctx = ctx
        self.max_age_ms = max_age_ms

    def after_nack(self, broker: dramatiq.Broker, proxy: MessageProxy) -> None:
        message: dramatiq.Message[Any] = proxy._message
        try:
            record(self.ctx, message, datetime.now(UTC), attempts=message.options.get("retries", 0),
                   max_age_ms=self.max_age_ms)
        except SQLAlchemyError:
            log.warning("dead_letter_not_recorded_yet", message_id=message.message_id, queue=message.queue_name,
                        error=traceback.format_exc(limit=1).strip().splitlines()[-1])
            return
        client = getattr(broker, "client", None)
        redis_module = sys.modules.get("redis")  # not imported: then no client is a Redis one
        if redis_module is not None and isinstance(client, redis_module.Redis):
            forget(client, getattr(broker, "namespace", ""), message)


def sweep(ctx: JobContext, client: redis.Redis, namespace: str, queues: tuple[str, ...], now: datetime,
          max_age_ms: int | None = None) -> int:
    """Record every dead letter still in Redis, then remove it there; return how many were recorded.

    One letter that cannot be recorded is logged and left for the next pass: it never stops the others.
    """
    recorded = 0
    for queue in queues:
        for redis_id, data in client.hgetall(f"{namespace}:{dramatiq.common.xq_name(queue)}.msgs").items():
            try:
                recorded += _sweep_one(ctx, client, namespace, queue, redis_id, data, now, max_age_ms)
            except Exception as error:
                log.warning("dead_letter_not_recorded", queue=queue, redis_message_id=str(redis_id)[:80],
                            error=type(error).__name__)
    return recorded


def _sweep_one(ctx: JobContext, client: redis.Redis, namespace: str, queue: str, redis_id: Any, data: Any,
               now: datetime, max_age_ms: int | None) -> bool:
    try:
        message = dramatiq.Message.decode(data if isinstance(data, bytes) else data.encode())
    except dramatiq.errors.DecodeError:
        log.warning("dead_letter_undecodable", redis_message_id=str(redis_id)[:80])
        return False
    message.options["redis_message_id"] = redis_id.decode() if isinstance(redis_id, bytes) else redis_id
    # Redis keeps the copy enqueued for the last attempt: one retry fewer than were made.
    if message.actor_name == QUARANTINE.actor_name and len(message.args) == 2:  # bytes the decoder refused
        stored = dead_letters.record(ctx, kept_message(message), now=now, attempts=0, last_error="",
                                     reason=f"the dead letter could not be decoded: {message.args[1]}")
    else:
        stored = record(ctx, message, now, attempts=message.options.get("retries", 0) + 1, max_age_ms=max_age_ms)
    forget(client, namespace, message, queue)
    return stored
def sweep_rabbitmq(ctx: JobContext, url: str, queues: tuple[str, ...], now: datetime) -> int:
    """Drain every ``<queue>.XQ`` into the database; return how many were newly recorded.

    Each message is acknowledged (removed from RabbitMQ) only after it is recorded, or found
    recorded already by the middleware; when the database fails it is handed back to RabbitMQ and
    the sweep stops, to try again next time. Only the messages present when a queue's sweep
    starts are read, so a sweep always ends.
    """
    import pika
    import pika.exceptions

    recorded = 0
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for queue in queues:
            name = dramatiq.common.xq_name(queue)
            try:
                left = int(channel.queue_declare(name, passive=True).method.message_count)
            except pika.exceptions.ChannelClosedByBroker:  # 404: nothing was ever dead-lettered there
                channel = connection.channel()
                continue
            for _ in range(left):
                method, _properties, body = channel.basic_get(name, auto_ack=False)
                if method is None:
                    break
                try:
                    message = dramatiq.Message.decode(body)
                except dramatiq.errors.DecodeError:
                    log.warning("dead_letter_undecodable", queue=queue)
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    continue
                try:
                    # Like Redis, the queue keeps the copy enqueued for the last attempt.
                    recorded += record(ctx, message, now, attempts=message.options.get("retries", 0) + 1)
                except Exception:
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    raise
                channel.basic_ack(method.delivery_tag)
    finally:
        connection.close()
    return recorded
