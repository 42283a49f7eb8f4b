"""The producer side: signed envelopes wrapped in dramatiq messages and enqueued.

Producers never write raw payloads into the broker: they go through this module (or ``billing
enqueue``, which uses it), so every message is a signed envelope on the queue and actor that
``jobs.routes`` names, and no actor needs declaring. ``BrokerSender`` is the same path for the
follow-up messages of ``jobs`` (its ``Sender`` port).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.common import current_millis

from jobs.routes import envelope_message
from jobs.schemas import parse_body
from jobs.sending import Outgoing
from jobs.signer import Signer
from worker.encoder import is_redis_broker

if TYPE_CHECKING:  # redis loads with its broker (`billing simulate` has a stub one)
    from dramatiq.brokers.redis import RedisBroker


def dramatiq_message(message: Outgoing) -> dramatiq.Message[Any]:
    """The dramatiq form of a message ``jobs`` wants sent (same id, so a designated carrier is found)."""
    return dramatiq.Message(queue_name=message.queue_name, actor_name=message.actor_name, args=message.args,
                            kwargs={}, options=dict(message.options), message_id=message.message_id,
                            message_timestamp=current_millis())


def build_message(envelope: dict[str, Any]) -> dramatiq.Message[Any]:
    """The dramatiq message for an envelope, on the queue and actor its type routes to."""
    return dramatiq_message(envelope_message(envelope))


class BrokerSender:
    """``jobs.sending.Sender`` on a dramatiq broker."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def send(self, message: Outgoing) -> None:
        self.broker.declare_queue(message.queue_name)
        self.broker.enqueue(dramatiq_message(message))


def send(
    broker: dramatiq.Broker,
    message_type: str,
    body: dict[str, Any],
    signer: Signer,
    *,
    now: datetime,
    validate: bool = False,
) -> str:
    """Sign and enqueue one body; returns the envelope id.

    ``validate=True`` checks the body here first (``InvalidMessage``), for interactive use; the
    worker checks it again either way.
    """
    if validate:
        parse_body(message_type, body)
    message = build_message(signer.envelope(message_type, body, now=now))
    broker.declare_queue(message.queue_name)  # no actor import needed, even on a StubBroker
    broker.enqueue(message)
    return str(message.args[0]["id"])


def _enqueue_pipelined(broker: RedisBroker, messages: list[dramatiq.Message[Any]]) -> None:
    """``RedisBroker.enqueue`` for many messages in one round trip (same script, same arguments)."""
    dispatch = broker.scripts["dispatch"]
    pipeline = broker.client.pipeline(transaction=False)
    enqueued = []
    for original in messages:
        message = original.copy(options={"redis_message_id": str(uuid.uuid4())})
        broker.emit_before("enqueue", message, None)
        arguments = [
            "enqueue",
            current_millis(),
            message.queue_name,
            broker.broker_id,
            broker.heartbeat_timeout,
            broker.dead_message_ttl,
            broker._should_do_maintenance("enqueue"),
            broker._max_unpack_size(),  # type: ignore[no-untyped-call]
            message.options["redis_message_id"],
            message.encode(),
        ]
        dispatch(keys=[broker.namespace], args=arguments, client=pipeline)
        enqueued.append(message)
    pipeline.execute()
    for message in enqueued:
        broker.emit_after("enqueue", message, None)


def send_many(
    broker: dramatiq.Broker,
    items: Iterable[tuple[str, dict[str, Any]]],
    signer: Signer,
    *,
    now: datetime,
    batch_size: int = 500,
) -> int:
    """Sign and enqueue many ``(type, body)`` pairs; returns how many were sent.

    On a ``RedisBroker`` each batch is one pipelined round trip of dramatiq's own dispatch
    script; on any other broker, one ``enqueue`` per message. Every envelope is signed with
    ``now``: keep a load shorter than the signature tolerance, or call this per chunk.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    pipelined = is_redis_broker(broker)
    count = 0
    batch: list[dramatiq.Message[Any]] = []
    for message_type, body in items:
        message = build_message(signer.envelope(message_type, body, now=now))
        broker.declare_queue(message.queue_name)
        if not pipelined:
            broker.enqueue(message)
            count += 1
            continue
        batch.append(message)
        if len(batch) >= batch_size:
            _enqueue_pipelined(broker, batch)  # type: ignore[arg-type]
            count, batch = count + len(batch), []
    if batch:
        _enqueue_pipelined(broker, batch)  # type: ignore[arg-type]
        count += len(batch)
    return count


