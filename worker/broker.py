"""Builds the dramatiq broker with billing-safe settings and installs it globally.

dramatiq's defaults are not billing-safe (20 retries over days, no age limit, dead workers'
messages back only after minutes): every number here comes from ``Settings``. Actors bind to
the global broker when their module is imported, so ``jobs`` imports this module first.
``BILLING_BROKER=stub`` selects dramatiq's in-memory broker (unit tests); ``billing simulate``
uses ``ClockedStubBroker``, whose delays follow the test clock.
"""

from __future__ import annotations

import heapq
import itertools
import os
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import QueueNotFound
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

from worker import clock
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


class ClockedStubBroker(StubBroker):
    """A StubBroker whose delayed messages (retries with backoff) wait on the process clock.

    dramatiq's StubBroker stamps a delayed message with a wall-clock eta and its worker releases
    it on the wall clock: on a test clock that jumps hours at a time a retry would come back at
    the wrong simulated instant (and a long backoff would stall the run in real time). Here a
    delayed message is held with its eta on ``worker.clock`` until ``release_due`` is called at or
    after it; ``next_due`` tells the simulation when that is.
    """

    def __init__(self, middleware: list[Middleware] | None = None) -> None:
        super().__init__(middleware=middleware)
        self.held: list[tuple[datetime, int, dramatiq.Message[Any]]] = []
        self._order = itertools.count()

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        if delay is None:
            return super().enqueue(message)
        if message.queue_name not in self.queues:
            raise QueueNotFound(message.queue_name)  # type: ignore[no-untyped-call]
        self.emit_before("enqueue", message, delay)
        eta = clock.current().now() + timedelta(milliseconds=delay)
        heapq.heappush(self.held, (eta, next(self._order), message))
        self.emit_after("enqueue", message, delay)
        return message

    def next_due(self) -> datetime | None:
        return self.held[0][0] if self.held else None

    def release_due(self, now: datetime) -> int:
        """Enqueue every held message whose eta is ``now`` or earlier, in eta order."""
        released = 0
        while self.held and self.held[0][0] <= now:
            super().enqueue(heapq.heappop(self.held)[2])
            released += 1
        return released


def build_broker(settings: Settings, kind: str | None = None) -> dramatiq.Broker:
    """A Redis broker (production) or a StubBroker (simulation), not yet installed globally."""
    kind = kind or os.environ.get("BILLING_BROKER", "redis")
    middleware = billing_middleware(settings)
    if kind == "stub":
        return StubBroker(middleware=middleware)
    if kind == "simulation":
        return ClockedStubBroker(middleware=middleware)
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


def install_simulation(settings: Settings) -> ClockedStubBroker:
    """``install`` for ``billing simulate``: a StubBroker whose delays follow the test clock."""
    installed = install(settings, kind="simulation")
    assert isinstance(installed, ClockedStubBroker)
    return installed


broker = install()
