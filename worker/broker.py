"""The dramatiq broker with billing-safe settings, built on demand (nothing happens at import).

dramatiq's defaults are not billing-safe (20 retries over days, no age limit, dead workers'
messages back only after minutes): every number here comes from ``Settings``.
``kind="stub"`` selects dramatiq's in-memory broker (``billing simulate``, tests).
"""

from __future__ import annotations

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


def build_broker(settings: Settings, kind: str = "redis") -> dramatiq.Broker:
    """A Redis broker (production) or a StubBroker (simulation), not installed anywhere.

    Only worker processes (dramatiq's CLI emits ``process_boot``) act on the logging and metrics
    middleware; a client that merely enqueues is unaffected by them.
    """
    # the decoder that never raises, for every broker of the process
    dramatiq.set_encoder(SafeJSONEncoder(settings.max_envelope_bytes, settings.max_json_depth))
    middleware = billing_middleware(settings)
    if kind == "stub":
        return StubBroker(middleware=middleware)
    middleware += [ProcessLogging(settings), MetricsExposition(settings.metrics_port)]
    return RedisBroker(  # type: ignore[no-untyped-call]
        url=settings.redis_url,
        namespace=f"{settings.namespace}:dramatiq",
        middleware=middleware,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=settings.maintenance_chance,
    )
