"""The operator commands of ``billing``, one module per concern: they print, ``jobs`` queries."""

from __future__ import annotations

from datetime import UTC, datetime

from jobs.context import JobContext
from worker.broker import build_broker
from worker.context import build_context
from worker.settings import get_settings


def context() -> JobContext:
    """The job context of a short-lived command, on the configured database and broker."""
    settings = get_settings()
    return build_context(settings, build_broker(settings))


def wall_clock() -> datetime:
    """Real time, for signing: envelopes are judged against the worker's real clock."""
    return datetime.now(UTC)
