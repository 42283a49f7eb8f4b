"""The one clock seam: the shell reads time here, the billing core never does.

Production uses the system clock; ``billing simulate`` and the tests swap in a ``ManualClock``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant

    def advance(self, delta: timedelta) -> None:
        self._now += delta


_current: Clock = SystemClock()


def current() -> Clock:
    return _current


def use(clock: Clock) -> None:
    """Replace the process clock (simulation and tests only)."""
    global _current
    _current = clock


def local_date(instant: datetime, timezone: str) -> date:
    """The calendar date of ``instant`` in an account's time zone: that account's "today"."""
    return instant.astimezone(ZoneInfo(timezone)).date()
