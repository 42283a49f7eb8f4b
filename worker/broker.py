"""Builds the dramatiq broker with billing-safe settings and installs it globally.

dramatiq's defaults are not billing-safe (20 retries over days, no age limit, dead workers'
messages back only after minutes): every number here comes from ``Settings``. Actors bind to
the global broker when their module is imported, so ``jobs`` imports this module first.
``BILLING_BROKER=stub`` selects dramatiq's in-memory broker (``billing simulate``, unit tests).
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
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

from worker.dead_letters import DeadLetterRecorder
from worker.settings import Settings, get_settings


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
        DeadLetterRecorder(),
    ]


def build_broker(settings: Settings, kind: str | None = None) -> dramatiq.Broker:
    """A Redis broker (production) or a StubBroker (simulation), not yet installed globally."""
    kind = kind or os.environ.get("BILLING_BROKER", "redis")
    middleware = billing_middleware(settings)
    if kind == "stub":
        return StubBroker(middleware=middleware)
    from worker.logging import ProcessLogging
    from worker.metrics import MetricsExposition

    # Worker processes only (dramatiq's CLI emits process_boot): redacted logs, summed metrics.
    middleware += [ProcessLogging(settings), MetricsExposition(settings.metrics_port)]
    return RedisBroker(  # type: ignore[no-untyped-call]
        url=settings.redis_url,
        namespace=f"{settings.namespace}:dramatiq",
        middleware=middleware,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=settings.maintenance_chance,
    )


def install(settings: Settings | None = None, kind: str | None = None) -> dramatiq.Broker:
    """Build the broker, make it dramatiq's global one, and use the never-raising decoder."""
    broker = build_broker(settings or get_settings(), kind)
    dramatiq.set_broker(broker)
    # Imported only now: importing ``jobs`` declares actors, which must find this broker installed.
    from jobs.encoder import SafeJSONEncoder

    dramatiq.set_encoder(SafeJSONEncoder())
    return broker


broker = install()
