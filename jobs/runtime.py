"""Process-wide resources of the worker: settings, database sessions, producer registry.

Created lazily on first use from ``worker.settings``; ``billing simulate`` and tests configure
their own before any message is handled.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobs.producers import ProducerRegistry, load_registry
from worker import clock
from worker.db import make_engine, make_session_factory
from worker.settings import Settings, get_settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    registry: ProducerRegistry


_runtime: Runtime | None = None


def configure(settings: Settings | None = None, registry: ProducerRegistry | None = None) -> Runtime:
    """Build the runtime from settings (and an explicit registry, for simulation)."""
    global _runtime
    settings = settings or get_settings()
    rehearsal = clock.shifted(settings.clock_start, settings.clock_started_at)
    if rehearsal is not None:
        clock.use(rehearsal)
    engine = make_engine(settings.database_url)
    _runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        registry=registry or load_registry(settings),
    )
    return _runtime


def get() -> Runtime:
    return _runtime or configure()


def reset() -> None:
    """Forget the runtime (tests), disposing of its connections."""
    global _runtime
    if _runtime is not None:
        _runtime.engine.dispose()
    _runtime = None
