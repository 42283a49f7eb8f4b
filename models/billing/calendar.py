"""The billing calendar: anchors derived from the bill day, and the periods between them.

Every anchor is computed from the bill day B and a month index, never from the previous anchor,
so a bill day of 31 gives Jan 31, Feb 28/29, Mar 31, Apr 30 and nothing drifts. Periods are
half-open ``[start, end)``; shells print them with inclusive ends.
"""

from __future__ import annotations

import calendar as _stdlib_calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

from models.billing.errors import InvalidSchedule


class IntervalUnit(StrEnum):
    MONTH = "month"
    YEAR = "year"
    WEEK = "week"


@lru_cache(maxsize=65536)
def anchor_in_month(year: int, month: int, bill_day: int) -> date:
    """Day B of the month, or its last day when the month is shorter (cached: a run asks for few)."""
    last_day = _stdlib_calendar.monthrange(year, month)[1]
    return date(year, month, min(bill_day, last_day))


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _anchor_at(index: int, bill_day: int) -> date:
    year, month0 = divmod(index, 12)
    return anchor_in_month(year, month0 + 1, bill_day)


@dataclass(frozen=True)
class BillingPeriod:
    """A half-open service period and the full cycle it belongs to (equal unless a stub)."""

    start: date
    end: date
    cycle_start: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def cycle_days(self) -> int:
        return (self.end - self.cycle_start).days

    @property
    def is_stub(self) -> bool:
        return self.start != self.cycle_start

    @property
    def last_day(self) -> date:
        """The inclusive end, as invoices show it."""
        return self.end - timedelta(days=1)


@dataclass(frozen=True)
class Cadence:
    """How often a subscription renews and on which day.

    Month-based intervals (``month`` x n, ``year`` x n = 12n months) anchor on ``bill_day``
    (1..31), in the months ``bill_month + k*n`` when ``bill_month`` is set, otherwise every n
    months from the first anchor on or after the start. Week intervals anchor on
    ``bill_weekday`` (1 = Monday .. 7 = Sunday).
    """

    unit: IntervalUnit
    count: int
    bill_day: int
    bill_month: int | None = None
    bill_weekday: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.count <= 120:
            raise InvalidSchedule("interval_count", f"must be between 1 and 120, not {self.count}")
        if not 1 <= self.bill_day <= 31:
            raise InvalidSchedule("bill_day", f"must be between 1 and 31, not {self.bill_day}")
        if self.bill_month is not None and not 1 <= self.bill_month <= 12:
            raise InvalidSchedule("bill_month", f"must be between 1 and 12, not {self.bill_month}")
        if not isinstance(self.unit, IntervalUnit):
            object.__setattr__(self, "unit", IntervalUnit(self.unit))
        months = self.months
        if self.bill_month is not None and months and 12 % months and months % 12:
            raise InvalidSchedule(
                "bill_month", f"needs an interval that divides a year or spans whole years, not {months} months"
            )
        if self.bill_weekday is not None and not 1 <= self.bill_weekday <= 7:
            raise InvalidSchedule("bill_weekday", f"must be between 1 and 7, not {self.bill_weekday}")

    @property
    def months(self) -> int:
        """Length of a month-based cycle in months (0 for weeks)."""
        return {IntervalUnit.MONTH: self.count, IntervalUnit.YEAR: 12 * self.count}.get(self.unit, 0)

    def first_anchor(self, start: date) -> date:
        """The first anchor on or after ``start``."""
        if self.unit is IntervalUnit.WEEK:
            weekday = self.bill_weekday or start.isoweekday()
            return start + timedelta(days=(weekday - start.isoweekday()) % 7)
        index = _month_index(start)
        if _anchor_at(index, self.bill_day) < start:
            index += 1
        if self.bill_month is not None:
            phase = self.months if 12 % self.months == 0 else 12
            while (index % 12 + 1 - self.bill_month) % phase:
                index += 1
        return _anchor_at(index, self.bill_day)

    def shift(self, anchor: date, cycles: int) -> date:
        """The anchor ``cycles`` cycles after (or before, if negative) ``anchor``."""
        if self.unit is IntervalUnit.WEEK:
            return anchor + timedelta(weeks=self.count * cycles)
        return _anchor_at(_month_index(anchor) + self.months * cycles, self.bill_day)

    def periods(self, start: date, resume_at: date | None = None) -> Iterator[BillingPeriod]:
        """The periods of a subscription that starts on ``start``, in order, without end.

        The first is the stub ``[start, first anchor)`` when the start is not an anchor; its
        cycle is the full one that ends on the first anchor. ``resume_at`` (a period start
        returned earlier) skips the periods before it without walking through them.
        """
        first = self.first_anchor(start)
        if resume_at is None or resume_at <= start:
            if start < first:
                yield BillingPeriod(start, first, self.shift(first, -1))
            anchor = first
        else:
            anchor = self._anchor_not_before(first, resume_at)
        while True:
            following = self.shift(anchor, 1)
            yield BillingPeriod(anchor, following, anchor)
            anchor = following

    def _anchor_not_before(self, first: date, day: date) -> date:
        """The first anchor on or after ``day``, counted from ``first`` in whole cycles."""
        if self.unit is IntervalUnit.WEEK:
            cycles = -(-(day - first).days // (7 * self.count))
        else:  # whole months between the two, minus one: never past ``day``, at most a cycle short
            cycles = max(0, (_month_index(day) - _month_index(first)) // self.months - 1)
        anchor = self.shift(first, cycles)
        while anchor < day:
            anchor = self.shift(first, cycles := cycles + 1)
        return anchor
