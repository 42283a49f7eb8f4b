"""The one clock seam: handlers read time from the clock in their context, the core never does.

Production uses the system clock; ``billing simulate`` and the tests pass a ``ManualClock``; a
rehearsal (``BILLING_CLOCK_START``) runs the whole stack on a ``ShiftedClock``.
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


class ShiftedClock:
    """Real time moved to another start: ``start`` at the real instant ``started_at``, then real speed.

    Stripe's test clocks, for a whole stack: rehearse a migration or a demo "as of" a past or future
    date with every process (worker, relay, scheduler) agreeing on the time, because they share
    ``started_at``. Only billing dates follow it; signatures and broker timestamps stay on real time.
    """

    def __init__(self, start: datetime, started_at: datetime) -> None:
        if start.tzinfo is None or started_at.tzinfo is None:
            raise ValueError("ShiftedClock needs aware datetimes")
        self._shift = start - started_at

    def now(self) -> datetime:
        return datetime.now(UTC) + self._shift


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



def clock_for(start: datetime | None, started_at: datetime | None) -> Clock:
    """The rehearsal clock a ``BILLING_CLOCK_START`` setting asks for, else the system clock."""
    if start is None:
        return SystemClock()
    return ShiftedClock(start, started_at or datetime.now(UTC))


def local_date(instant: datetime, timezone: str) -> date:
    """The calendar date of ``instant`` in an account's time zone: that account's "today"."""
    return instant.astimezone(ZoneInfo(timezone)).date()
