"""The dramatiq broker with billing-safe settings, built on demand (nothing happens at import).

dramatiq's defaults are not billing-safe (20 retries over days, no age limit, dead workers'
messages back only after minutes): every number here comes from ``Settings``.
The settings choose the broker: RabbitMQ when ``BILLING_BROKER_URL`` is an ``amqp://`` URL (durable
queues, persistent messages, publisher confirms), else Redis (the default). ``kind="stub"``
selects dramatiq's in-memory broker (``billing simulate``, tests).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from worker.encoder import SafeJSONEncoder
from worker.exposition import MetricsExposition
from worker.logging import ProcessLogging
from worker.settings import Settings


def billing_middleware(settings: Settings) -> list[Middleware]:
    """dramatiq's default stack with our limits, plus CurrentMessage for the envelope checks."""
    return [
        AgeLimit(max_age=settings.max_age_ms),
        TimeLimit(time_limit=settings.time_limit_ms),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
        CurrentMessage(),
    ]


def build_broker(settings: Settings, kind: str | None = None) -> dramatiq.Broker:
    """The configured broker (``kind`` None), or the one ``kind`` names (redis, rabbitmq, stub), not installed.

    Only worker processes (dramatiq's CLI emits ``process_boot``) act on the logging and metrics
    middleware; a client that merely enqueues is unaffected by them.
    """
    # the decoder that never raises, for every broker of the process
    dramatiq.set_encoder(SafeJSONEncoder(settings.max_envelope_bytes, settings.max_json_depth))
    middleware = billing_middleware(settings)
    kind = kind or settings.broker_kind
    if kind == "stub":
        return StubBroker(middleware=middleware)
    # Each client library (pika, redis) is imported for its own broker only: `billing simulate` needs neither.
    middleware += [ProcessLogging(settings), MetricsExposition(settings.metrics_port)]
    if kind == "rabbitmq":
        if settings.broker_kind != "rabbitmq":
            raise ValueError("a RabbitMQ broker needs BILLING_BROKER_URL=amqp://...")
        # Durable queues and persistent messages (dramatiq's own), and publisher confirms: enqueue returns
        # once RabbitMQ has taken responsibility for the message, and raises when it has not.
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=settings.broker_url, confirm_delivery=True, middleware=middleware)
    from worker.redis_consumer import BatchFetchRedisBroker

    return BatchFetchRedisBroker(  # type: ignore[no-untyped-call]
        url=settings.broker_redis_url,
        namespace=f"{settings.namespace}:dramatiq",
        middleware=middleware,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=settings.maintenance_chance,
    )
