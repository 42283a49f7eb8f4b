"""A subscription's periods across bill-day changes (DESIGN §2b, "Bill day change").

A schedule is a list of segments ``(start, Cadence)``: the first from the subscription's start,
each later one from a period end ``S`` of the one before, with the new bill day. Inside a
segment the periods are ``cadence.periods(segment.start)``: when ``S`` is not an anchor of the
new bill day, that is a bridge stub ``[S, first B' anchor)`` whose cycle is the B' cycle that
contains it, charged like an onboarding stub, then B' periods. Week-based subscriptions never
change segment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from itertools import pairwise

from models.billing.calendar import BillingPeriod, Cadence, IntervalUnit
from models.billing.errors import CatchUpTooLong, InvalidSchedule


@dataclass(frozen=True)
class ScheduleSegment:
    """From ``start`` on, the periods follow ``cadence`` (as stored: a date and a bill day)."""

    start: date
    cadence: Cadence


@dataclass(frozen=True)
class Schedule:
    """The segments of one subscription, the first starting on its start date."""

    segments: tuple[ScheduleSegment, ...]

    def __post_init__(self) -> None:
        if not self.segments:
            raise InvalidSchedule("segments", "a schedule needs at least its first segment")
        for before, after in pairwise(self.segments):
            if after.start <= before.start:
                raise InvalidSchedule("segments", f"segment {after.start} does not follow {before.start}")

    @classmethod
    def single(cls, start: date, cadence: Cadence) -> Schedule:
        """The schedule of a subscription whose bill day never changed."""
        return cls((ScheduleSegment(start, cadence),))

    @property
    def start(self) -> date:
        return self.segments[0].start

    @property
    def cadence(self) -> Cadence:
        """The cadence in force for the periods to come (the last segment's)."""
        return self.segments[-1].cadence

    def periods(self, resume_at: date | None = None) -> Iterator[BillingPeriod]:
        """Every period in order, without end; ``resume_at`` (a period start) skips those before it."""
        first = 0
        if resume_at is not None:
            first = max(i for i, s in enumerate(self.segments) if s.start <= resume_at or i == 0)
        for index in range(first, len(self.segments)):
            segment = self.segments[index]
            stop = self.segments[index + 1].start if index + 1 < len(self.segments) else None
            resume = resume_at if index == first else None
            for period in segment.cadence.periods(segment.start, resume_at=resume):
                if stop is not None and period.start >= stop:
                    break
                if stop is not None and period.end > stop:
                    raise InvalidSchedule(
                        "segments", f"segment {stop} cuts the period {period.start} .. {period.last_day}"
                    )
                yield period

    def period_containing(self, day: date) -> BillingPeriod:
        """The period that contains ``day`` (the first period when ``day`` is before the start)."""
        lookback = timedelta(days=8 * self.cadence.count if self.cadence.unit is IntervalUnit.WEEK else 0)
        months = max(segment.cadence.months for segment in self.segments)
        lookback += timedelta(days=31 * months + 31)
        for period in self.periods(resume_at=self._resume_point(day - lookback)):
            if period.end > day:
                return period
        raise AssertionError("unreachable: periods never end")  # pragma: no cover

    def next_boundary(self, day: date) -> date:
        """``day`` if a period starts on it, else the end of the period containing it: where an
        effective date lands under ``proration: none`` ("the current period stays as billed")."""
        period = self.period_containing(day)
        return day if period.start == day or day < self.start else period.end

    def with_bill_day(self, bill_day: int, processed_on: date) -> Schedule:
        """The schedule after ``account.update {bill_day}`` processed on ``processed_on``.

        The current period (the one containing that day, or the first) runs to its end S; the new
        segment starts at S. Segments already planned from S on are replaced (the latest update
        wins). Week-based subscriptions, and an unchanged bill day, keep their schedule.
        """
        if self.cadence.unit is IntervalUnit.WEEK or bill_day == self.cadence.bill_day:
            return self
        boundary = self.period_containing(processed_on).end
        kept = tuple(segment for segment in self.segments if segment.start < boundary)
        return Schedule((*kept, ScheduleSegment(boundary, replace(self.cadence, bill_day=bill_day))))

    def check_backdate(self, effective: date, today: date, limit: int, field: str = "effective_date") -> None:
        """Refuse a change whose effective date reaches back over more than ``limit`` periods
        (DESIGN §2b: "within the catch-up bound: older is invalid"), counting the one containing
        ``effective`` up to the one containing ``today``."""
        if effective >= today:
            return
        first = self.period_containing(effective)
        for count, period in enumerate(self.periods(resume_at=first.start), start=1):
            if period.start > today:
                return
            if count > limit:
                raise CatchUpTooLong(
                    field, f"{effective} reaches back over more than {limit} periods; "
                    f"the bound is max_catch_up_periods = {limit}"
                )

    def _resume_point(self, day: date) -> date | None:
        """A resume date at or before the period containing ``day``'s start: a segment start or earlier."""
        return None if day <= self.start else day


__all__ = ["Schedule", "ScheduleSegment"]
