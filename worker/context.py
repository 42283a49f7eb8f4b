"""The job context a worker process hands to ``jobs``: built once, from the settings and a broker."""

from __future__ import annotations

import dramatiq

from jobs.clock import Clock, SystemClock, clock_for
from jobs.context import JobContext
from jobs.producers import ProducerRegistry, load_registry
from models.tables.store import make_engine, make_session_factory
from worker.client import BrokerSender
from worker.settings import Settings


def build_context(settings: Settings, broker: dramatiq.Broker, *, clock: Clock | None = None,
                  registry: ProducerRegistry | None = None) -> JobContext:
    """Sessions on the configured database, the rehearsal or system clock, the configured producers."""
    return JobContext(
        settings=settings,
        clock=clock or clock_for(settings.clock_start, settings.clock_started_at),
        sessions=make_session_factory(make_engine(settings.database_url, pool_size=settings.database_pool_size)),
        registry=registry or load_registry(settings),
        sender=BrokerSender(broker),
        trusted_clock=SystemClock() if clock is None and settings.clock_start is not None else None,
    )


def dispose(ctx: JobContext) -> None:
    """Close the context's database connections."""
    bind = ctx.sessions.kw.get("bind")
    if bind is not None:
        bind.dispose()
