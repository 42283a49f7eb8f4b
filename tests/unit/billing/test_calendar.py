"""The billing calendar: anchors derived from the bill day, stubs, and the periods between anchors.

Periods are half-open ``[start, end)``; rows show the inclusive last day where an invoice would.

    start    first anchor            anchor + 1 cycle
      |---stub---|-----full period-------|-----full period----- ...
  |---the stub's cycle---|   (cycle_start = first anchor - 1 cycle, derived from B)
"""

from __future__ import annotations

from datetime import date
from itertools import islice

import pytest

from models.billing.calendar import BillingPeriod, Cadence, IntervalUnit, anchor_in_month
from models.billing.errors import InvalidSchedule
from tests.unit.billing.helpers import d, monthly

MONTH, YEAR, WEEK = IntervalUnit.MONTH, IntervalUnit.YEAR, IntervalUnit.WEEK

PeriodRow = tuple[str, str, int, int]
"""(first day, last day inclusive, days, cycle days)."""


def first_periods(cadence: Cadence, start: str, count: int, resume_at: str | None = None) -> list[PeriodRow]:
    periods = islice(cadence.periods(d(start), resume_at=d(resume_at) if resume_at else None), count)
    return [(p.start.isoformat(), p.last_day.isoformat(), p.days, p.cycle_days) for p in periods]


# -- anchors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "bill_day", "anchor"),
    [
        (2023, 2, 28, "2023-02-28"),  # Feb 2023 has 28 days: min(28, 28) = 28
        (2023, 2, 29, "2023-02-28"),  # min(29, 28) = 28
        (2023, 2, 30, "2023-02-28"),  # min(30, 28) = 28
        (2023, 2, 31, "2023-02-28"),  # min(31, 28) = 28
        (2024, 2, 28, "2024-02-28"),  # leap Feb 2024 has 29 days: min(28, 29) = 28
        (2024, 2, 29, "2024-02-29"),  # min(29, 29) = 29
        (2024, 2, 30, "2024-02-29"),  # min(30, 29) = 29
        (2024, 2, 31, "2024-02-29"),  # min(31, 29) = 29
        (2023, 1, 31, "2023-01-31"),  # January has 31 days: min(31, 31)
        (2023, 3, 31, "2023-03-31"),  # min(31, 31)
        (2023, 4, 31, "2023-04-30"),  # April has 30 days: min(31, 30)
        (2023, 4, 30, "2023-04-30"),  # min(30, 30)
        (2023, 6, 15, "2023-06-15"),  # min(15, 30)
        (2023, 12, 1, "2023-12-01"),  # min(1, 31)
        (2100, 2, 29, "2100-02-28"),  # 2100 is not a leap year (divisible by 100, not by 400)
        (2000, 2, 29, "2000-02-29"),  # 2000 is a leap year (divisible by 400)
    ],
)
def test_anchor_in_month_is_the_bill_day_or_the_last_day(
    year: int, month: int, bill_day: int, anchor: str
) -> None:
    assert anchor_in_month(year, month, bill_day) == d(anchor)


@pytest.mark.parametrize(
    ("bill_day", "start", "anchors"),
    [
        # B = 31: Jan 31, Feb 28 (clamped), then back to Mar 31, Apr 30 (clamped), May 31: no drift
        (31, "2023-01-31",
         ["2023-01-31", "2023-02-28", "2023-03-31", "2023-04-30", "2023-05-31", "2023-06-30"]),
        # B = 31 in a leap year: Feb 29, then Mar 31
        (31, "2024-01-31", ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]),
        # B = 30: Feb 28 (clamped), Mar 30 (not 28)
        (30, "2023-01-30", ["2023-01-30", "2023-02-28", "2023-03-30", "2023-04-30"]),
        # B = 29 across a non-leap and a leap February
        (29, "2023-01-29", ["2023-01-29", "2023-02-28", "2023-03-29"]),
        (29, "2024-01-29", ["2024-01-29", "2024-02-29", "2024-03-29"]),
        # B = 28: never clamped
        (28, "2024-01-28", ["2024-01-28", "2024-02-28", "2024-03-28"]),
        # B = 31 over a year end and into a non-leap February
        (31, "2022-11-30", ["2022-11-30", "2022-12-31", "2023-01-31", "2023-02-28", "2023-03-31"]),
    ],
)
def test_monthly_anchors_come_back_to_the_bill_day(bill_day: int, start: str, anchors: list[str]) -> None:
    periods = islice(monthly(bill_day).periods(d(start)), len(anchors))
    assert [p.start.isoformat() for p in periods] == anchors


@pytest.mark.parametrize(
    ("cadence", "anchor", "cycles", "shifted"),
    [
        (monthly(31), "2023-02-28", 1, "2023-03-31"),  # Feb 28 + 1 month re-derived from B=31: Mar 31
        (monthly(31), "2023-03-31", -1, "2023-02-28"),  # Mar 31 - 1 month: Feb 28 (clamped)
        (monthly(31), "2024-01-31", 1, "2024-02-29"),  # leap February
        (monthly(31), "2023-01-31", 12, "2024-01-31"),  # 12 months later
        (monthly(31), "2023-02-28", 2, "2023-04-30"),  # Feb + 2 = April: min(31, 30)
        (monthly(30, 3), "2023-11-30", 1, "2024-02-29"),  # Nov + 3 months = Feb 2024: min(30, 29)
        (monthly(30, 3), "2024-02-29", 1, "2024-05-30"),  # Feb + 3 = May: back to 30
        (Cadence(YEAR, 1, 29), "2024-02-29", 1, "2025-02-28"),  # + 12 months: min(29, 28)
        (Cadence(YEAR, 1, 29), "2025-02-28", 3, "2028-02-29"),  # + 36 months: leap again, min(29, 29)
        (Cadence(WEEK, 1, 1), "2023-03-06", 3, "2023-03-27"),  # + 3 x 7 days
        (Cadence(WEEK, 2, 1), "2023-03-06", 2, "2023-04-03"),  # + 2 x 14 days
        (Cadence(WEEK, 2, 1), "2023-03-06", -1, "2023-02-20"),  # - 14 days
    ],
)
def test_shift_derives_each_anchor_from_the_bill_day(
    cadence: Cadence, anchor: str, cycles: int, shifted: str
) -> None:
    assert cadence.shift(d(anchor), cycles) == d(shifted)


@pytest.mark.parametrize(
    ("cadence", "start", "first_anchor"),
    [
        (monthly(15), "2018-10-05", "2018-10-15"),  # day 5 < B = 15: this month's anchor
        (monthly(15), "2018-10-15", "2018-10-15"),  # on the bill day: the start itself
        (monthly(15), "2018-10-16", "2018-11-15"),  # past this month's anchor: next month's
        (monthly(31), "2023-02-28", "2023-02-28"),  # Feb 2023's anchor is the 28th: the start itself
        (monthly(31), "2024-02-28", "2024-02-29"),  # Feb 2024's anchor is the 29th
        (monthly(30, 3), "2023-01-31", "2023-02-28"),  # quarterly without bill_month: first anchor on/after
        (monthly(15, 3, bill_month=1), "2023-01-20", "2023-04-15"),  # months 1, 4, 7, 10: Jan 15 is past
        (monthly(15, 3, bill_month=1), "2023-04-10", "2023-04-15"),  # April is an anchor month
        (monthly(15, 3, bill_month=2), "2023-01-10", "2023-02-15"),  # months 2, 5, 8, 11
        (Cadence(YEAR, 1, 1, bill_month=1), "2023-01-01", "2023-01-01"),  # on the anchor
        (Cadence(YEAR, 1, 1, bill_month=1), "2023-01-02", "2024-01-01"),  # next January
        (Cadence(YEAR, 1, 15), "2018-10-05", "2018-10-15"),  # yearly without bill_month: this month
        (Cadence(WEEK, 1, 1, bill_weekday=1), "2023-03-01", "2023-03-06"),  # Wed -> Mon: + (1 - 3) % 7 = 5
        (Cadence(WEEK, 1, 1, bill_weekday=3), "2023-03-01", "2023-03-01"),  # Wed -> Wed: + 0
        (Cadence(WEEK, 1, 1, bill_weekday=2), "2023-03-01", "2023-03-07"),  # Wed -> Tue: + (2 - 3) % 7 = 6
        (Cadence(WEEK, 1, 1), "2023-03-05", "2023-03-05"),  # no bill_weekday: the start's own (Sunday)
    ],
)
def test_first_anchor_is_on_or_after_the_start(cadence: Cadence, start: str, first_anchor: str) -> None:
    assert cadence.first_anchor(d(start)) == d(first_anchor)


# -- bill days 28..31 across February 2023 and February 2024 -------------------------------------


@pytest.mark.parametrize(
    ("bill_day", "start", "expected"),
    [
        # start Feb 10 2023 (Feb has 28 days); stub = [Feb 10, Feb anchor), cycle = [Jan B, Feb anchor)
        (28, "2023-02-10", [("2023-02-10", "2023-02-27", 18, 31),  # 28 - 10 = 18; Jan 28..Feb 27 = 4 + 27
                            ("2023-02-28", "2023-03-27", 28, 28)]),  # Feb 28 + Mar 1..27 = 1 + 27 = 28
        (29, "2023-02-10", [("2023-02-10", "2023-02-27", 18, 30),  # min(29, 28) = 28; Jan 29..Feb 27 = 3 + 27
                            ("2023-02-28", "2023-03-28", 29, 29)]),  # 1 + 28
        (30, "2023-02-10", [("2023-02-10", "2023-02-27", 18, 29),  # Jan 30..Feb 27 = 2 + 27 = 29
                            ("2023-02-28", "2023-03-29", 30, 30)]),  # 1 + 29
        (31, "2023-02-10", [("2023-02-10", "2023-02-27", 18, 28),  # Jan 31..Feb 27 = 1 + 27 = 28
                            ("2023-02-28", "2023-03-30", 31, 31)]),  # 1 + 30
        # start Feb 10 2024 (leap: Feb has 29 days)
        (28, "2024-02-10", [("2024-02-10", "2024-02-27", 18, 31),  # 28 - 10 = 18; Jan 28..Feb 27 = 4 + 27
                            ("2024-02-28", "2024-03-27", 29, 29)]),  # Feb 28, 29 + Mar 1..27 = 2 + 27
        (29, "2024-02-10", [("2024-02-10", "2024-02-28", 19, 31),  # 29 - 10 = 19; Jan 29..Feb 28 = 3 + 28
                            ("2024-02-29", "2024-03-28", 29, 29)]),  # 1 + 28
        (30, "2024-02-10", [("2024-02-10", "2024-02-28", 19, 30),  # min(30, 29) = 29; Jan 30..Feb 28 = 2 + 28
                            ("2024-02-29", "2024-03-29", 30, 30)]),  # 1 + 29
        (31, "2024-02-10", [("2024-02-10", "2024-02-28", 19, 29),  # Jan 31..Feb 28 = 1 + 28 = 29
                            ("2024-02-29", "2024-03-30", 31, 31)]),  # 1 + 30
        # stubs that end in March, whose cycle starts on the clamped February anchor
        (31, "2023-03-10", [("2023-03-10", "2023-03-30", 21, 31),  # 31 - 10 = 21; Feb 28..Mar 30 = 1 + 30
                            ("2023-03-31", "2023-04-29", 30, 30)]),  # Mar 31 + Apr 1..29 = 1 + 29
        (30, "2024-03-10", [("2024-03-10", "2024-03-29", 20, 30),  # 30 - 10 = 20; Feb 29..Mar 29 = 1 + 29
                            ("2024-03-30", "2024-04-29", 31, 31)]),  # 2 + 29
        # stubs that end in February from January
        (31, "2023-01-10", [("2023-01-10", "2023-01-30", 21, 31),  # Dec 31..Jan 30 = 1 + 30
                            ("2023-01-31", "2023-02-27", 28, 28),  # 1 + 27
                            ("2023-02-28", "2023-03-30", 31, 31)]),  # 1 + 30
        (30, "2023-02-01", [("2023-02-01", "2023-02-27", 27, 29),  # 28 - 1 = 27; Jan 30..Feb 27 = 2 + 27
                            ("2023-02-28", "2023-03-29", 30, 30)]),
    ],
)
def test_bill_days_28_to_31_across_february(bill_day: int, start: str, expected: list[PeriodRow]) -> None:
    assert first_periods(monthly(bill_day), start, len(expected)) == expected


@pytest.mark.parametrize(
    ("bill_day", "start", "expected"),
    [
        (31, "2023-02-28", ("2023-02-28", "2023-03-30", 31, 31)),  # Feb 28 is B=31's anchor in 2023
        (29, "2023-02-28", ("2023-02-28", "2023-03-28", 29, 29)),  # and B=29's
        (31, "2024-02-29", ("2024-02-29", "2024-03-30", 31, 31)),  # Feb 29 is B=31's anchor in 2024
        (15, "2018-10-15", ("2018-10-15", "2018-11-14", 31, 31)),  # the Aria bill day: Oct 15..Nov 14
        (1, "2024-02-01", ("2024-02-01", "2024-02-29", 29, 29)),  # B=1: calendar months
    ],
)
def test_a_start_on_the_bill_day_has_no_stub(bill_day: int, start: str, expected: PeriodRow) -> None:
    first = next(iter(monthly(bill_day).periods(d(start))))
    assert not first.is_stub
    assert first_periods(monthly(bill_day), start, 1) == [expected]


@pytest.mark.parametrize(
    ("cadence", "start", "expected"),
    [
        (monthly(15), "2018-10-14", ("2018-10-14", "2018-10-14", 1, 30)),  # 15 - 14 = 1; Sep 15..Oct 14 = 30
        (monthly(31), "2024-02-28", ("2024-02-28", "2024-02-28", 1, 29)),  # anchor Feb 29; Jan 31..28 = 29
        (monthly(31), "2023-02-27", ("2023-02-27", "2023-02-27", 1, 28)),  # anchor Feb 28; Jan 31..27 = 28
        (Cadence(YEAR, 1, 1, bill_month=1), "2023-12-31", ("2023-12-31", "2023-12-31", 1, 365)),  # 2023 = 365
        (Cadence(WEEK, 1, 1, bill_weekday=1), "2023-03-05", ("2023-03-05", "2023-03-05", 1, 7)),  # Sun -> Mon
    ],
)
def test_a_one_day_stub(cadence: Cadence, start: str, expected: PeriodRow) -> None:
    assert first_periods(cadence, start, 1) == [expected]


# -- quarterly, half-yearly, yearly ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cadence", "start", "expected"),
    [
        # quarterly, no bill_month: anchors every 3 months from the first anchor on/after the start (Feb 15)
        (monthly(15, 3), "2023-01-20", [
            ("2023-01-20", "2023-02-14", 26, 92),  # 12 + 14; Nov 15..Feb 14 = 16+31+31+14
            ("2023-02-15", "2023-05-14", 89, 89),  # 14 + 31 + 30 + 14
            ("2023-05-15", "2023-08-14", 92, 92),  # 17 + 30 + 31 + 14
        ]),
        # quarterly, bill_month=1: anchor months 1, 4, 7, 10 (Jan 15 is already past)
        (monthly(15, 3, bill_month=1), "2023-01-20", [
            ("2023-01-20", "2023-04-14", 85, 90),  # 12 + 28 + 31 + 14; Jan 15..Apr 14 = 17+28+31+14
            ("2023-04-15", "2023-07-14", 91, 91),  # 16 + 31 + 30 + 14
            ("2023-07-15", "2023-10-14", 92, 92),  # 17 + 31 + 30 + 14
        ]),
        # quarterly, bill_month=2, B=31: months 2, 5, 8, 11, clamped in February
        (monthly(31, 3, bill_month=2), "2023-01-20", [
            ("2023-01-20", "2023-02-27", 39, 90),  # 12 + 27 = 39; Nov 30..Feb 27 = 1 + 31 + 31 + 27 = 90
            ("2023-02-28", "2023-05-30", 92, 92),  # 1 + 31 + 30 + 30
            ("2023-05-31", "2023-08-30", 92, 92),  # 1 + 30 + 31 + 30
        ]),
        # half-yearly, bill_month=7: anchor months 1 and 7
        (monthly(1, 6, bill_month=7), "2023-03-15", [
            ("2023-03-15", "2023-06-30", 108, 181),  # 17+30+31+30; Jan..Jun 2023 = 31+28+31+30+31+30
            ("2023-07-01", "2023-12-31", 184, 184),  # 31 + 31 + 30 + 31 + 30 + 31
        ]),
        # yearly (year x 1), no bill_month: the first anchor on/after the start (Oct 15), then every 12 months
        (Cadence(YEAR, 1, 15), "2018-10-05", [
            ("2018-10-05", "2018-10-14", 10, 365),  # 15 - 5 = 10; Oct 15 2017..Oct 14 2018 = 365
            ("2018-10-15", "2019-10-14", 365, 365),
            ("2019-10-15", "2020-10-14", 366, 366),  # contains Feb 29 2020
        ]),
        # yearly, bill_month=1, B=1: calendar years
        (Cadence(YEAR, 1, 1, bill_month=1), "2023-03-10", [
            ("2023-03-10", "2023-12-31", 297, 365),  # 22 + 30 + 31 + 30 + 31 + 31 + 30 + 31 + 30 + 31 = 297
            ("2024-01-01", "2024-12-31", 366, 366),  # leap year
            ("2025-01-01", "2025-12-31", 365, 365),
        ]),
        # yearly, bill_month=2, B=29: Feb 28 in common years, Feb 29 in leap years
        (Cadence(YEAR, 1, 29, bill_month=2), "2023-02-01", [
            ("2023-02-01", "2023-02-27", 27, 365),  # 28 - 1 = 27; Feb 28 2022..Feb 27 2023 = 365
            ("2023-02-28", "2024-02-28", 366, 366),  # Feb 28 2023..Feb 28 2024 includes Feb 29 2024
            ("2024-02-29", "2025-02-27", 365, 365),
        ]),
        # year x 2, bill_month=1
        (Cadence(YEAR, 2, 1, bill_month=1), "2023-03-10", [
            ("2023-03-10", "2023-12-31", 297, 730),  # cycle Jan 1 2022..Dec 31 2023 = 365 + 365
            ("2024-01-01", "2025-12-31", 731, 731),  # 366 + 365
        ]),
    ],
)
def test_quarterly_and_yearly_periods(cadence: Cadence, start: str, expected: list[PeriodRow]) -> None:
    assert first_periods(cadence, start, len(expected)) == expected


# -- weeks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cadence", "start", "expected"),
    [
        # weekly on Mondays, start Wednesday Mar 1 2023: stub Wed..Sun
        (Cadence(WEEK, 1, 1, bill_weekday=1), "2023-03-01", [
            ("2023-03-01", "2023-03-05", 5, 7),  # Mar 6 - Mar 1 = 5 days; cycle Feb 27..Mar 5
            ("2023-03-06", "2023-03-12", 7, 7),
            ("2023-03-13", "2023-03-19", 7, 7),
        ]),
        # weekly on Tuesdays from a Wednesday: a 6-day stub
        (Cadence(WEEK, 1, 1, bill_weekday=2), "2023-03-01", [
            ("2023-03-01", "2023-03-06", 6, 7),  # (2 - 3) % 7 = 6
            ("2023-03-07", "2023-03-13", 7, 7),
        ]),
        # every 2 weeks on Fridays, start Wednesday: stub Wed, Thu inside a 14-day cycle
        (Cadence(WEEK, 2, 1, bill_weekday=5), "2023-03-01", [
            ("2023-03-01", "2023-03-02", 2, 14),  # (5 - 3) % 7 = 2; cycle Feb 17..Mar 2 = 14 days
            ("2023-03-03", "2023-03-16", 14, 14),
            ("2023-03-17", "2023-03-30", 14, 14),
        ]),
        # no bill_weekday: the start's weekday, so no stub
        (Cadence(WEEK, 1, 1), "2023-03-01",
         [("2023-03-01", "2023-03-07", 7, 7), ("2023-03-08", "2023-03-14", 7, 7)]),
        (Cadence(WEEK, 2, 1), "2023-03-01", [("2023-03-01", "2023-03-14", 14, 14)]),
        # across the leap day
        (Cadence(WEEK, 1, 1, bill_weekday=4), "2024-02-27", [
            ("2024-02-27", "2024-02-28", 2, 7),  # Tue -> Thu: (4 - 2) % 7 = 2
            ("2024-02-29", "2024-03-06", 7, 7),
        ]),
    ],
)
def test_week_periods(cadence: Cadence, start: str, expected: list[PeriodRow]) -> None:
    assert first_periods(cadence, start, len(expected)) == expected


def test_every_week_period_starts_on_the_bill_weekday() -> None:
    cadence = Cadence(WEEK, 2, 1, bill_weekday=5)
    periods = list(islice(cadence.periods(d("2023-03-01")), 30))
    assert all(p.start.isoweekday() == 5 for p in periods[1:])
    assert all(p.days == 14 for p in periods[1:])


# -- resuming ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cadence", "start", "resume_at", "expected"),
    [
        (monthly(15), "2018-10-05", "2018-10-05", [("2018-10-05", "2018-10-14", 10, 30)]),  # at start: stub
        (monthly(15), "2018-10-05", "2018-01-01", [("2018-10-05", "2018-10-14", 10, 30)]),  # before: stub
        (monthly(15), "2018-10-05", "2018-10-15", [("2018-10-15", "2018-11-14", 31, 31)]),  # after the stub
        (monthly(15), "2018-10-05", "2018-12-15", [("2018-12-15", "2019-01-14", 31, 31),
                                                   ("2019-01-15", "2019-02-14", 31, 31)]),
        (monthly(31), "2023-01-10", "2023-02-28", [("2023-02-28", "2023-03-30", 31, 31)]),  # clamped anchor
        (monthly(31), "2023-01-10", "2030-02-28", [("2030-02-28", "2030-03-30", 31, 31),  # years later
                                                   ("2030-03-31", "2030-04-29", 30, 30)]),
        (monthly(15, 3, bill_month=1), "2023-01-20", "2023-07-15", [("2023-07-15", "2023-10-14", 92, 92)]),
        (Cadence(WEEK, 2, 1, bill_weekday=5), "2023-03-01", "2023-03-17",
         [("2023-03-17", "2023-03-30", 14, 14)]),
        (Cadence(YEAR, 1, 29, bill_month=2), "2023-02-01", "2024-02-29",
         [("2024-02-29", "2025-02-27", 365, 365)]),
    ],
)
def test_resume_at_a_period_start(
    cadence: Cadence, start: str, resume_at: str, expected: list[PeriodRow]
) -> None:
    assert first_periods(cadence, start, len(expected), resume_at=resume_at) == expected


# -- the period value ------------------------------------------------------------------------------


def test_billing_period_shows_an_inclusive_last_day() -> None:
    stub = BillingPeriod(d("2018-10-05"), d("2018-10-15"), d("2018-09-15"))
    assert stub.last_day == d("2018-10-14")
    assert stub.days == 10  # Oct 5..14
    assert stub.cycle_days == 30  # Sep 15..Oct 14
    assert stub.is_stub
    full = BillingPeriod(d("2018-10-15"), d("2018-11-15"), d("2018-10-15"))
    assert (full.days, full.cycle_days, full.is_stub) == (31, 31, False)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"unit": MONTH, "count": 0, "bill_day": 15}, "interval_count"),
        ({"unit": MONTH, "count": 121, "bill_day": 15}, "interval_count"),
        ({"unit": WEEK, "count": -1, "bill_day": 15}, "interval_count"),
        ({"unit": MONTH, "count": 1, "bill_day": 0}, "bill_day"),
        ({"unit": MONTH, "count": 1, "bill_day": 32}, "bill_day"),
        ({"unit": MONTH, "count": 3, "bill_day": 1, "bill_month": 0}, "bill_month"),
        ({"unit": MONTH, "count": 3, "bill_day": 1, "bill_month": 13}, "bill_month"),
        ({"unit": WEEK, "count": 1, "bill_day": 1, "bill_weekday": 0}, "bill_weekday"),
        ({"unit": WEEK, "count": 1, "bill_day": 1, "bill_weekday": 8}, "bill_weekday"),
    ],
)
def test_cadence_refuses_impossible_schedules(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        Cadence(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_cadence_months() -> None:
    assert monthly(1).months == 1
    assert monthly(1, 3).months == 3
    assert Cadence(YEAR, 2, 1).months == 24  # year x n = 12n months
    assert Cadence(WEEK, 2, 1).months == 0


def test_bill_month_is_refused_with_an_interval_that_does_not_divide_a_year() -> None:
    # month x 8 with bill_month = 1: the months 1 + 8k do not repeat yearly, so the stub could outgrow its
    # cycle (Feb 1..Dec 31 2023 = 334 days in a 245-day cycle); the cadence is refused instead.
    with pytest.raises(InvalidSchedule, match="bill_month"):
        monthly(1, 8, bill_month=1)


def test_a_plain_string_unit_is_refused_or_understood() -> None:
    # Expected: InvalidSchedule, or the same periods as IntervalUnit.WEEK. Got: [Mar 1, Mar 1) forever.
    try:
        cadence = Cadence("week", 1, 1)  # type: ignore[arg-type]
    except InvalidSchedule:
        return
    first, second = islice(cadence.periods(date(2023, 3, 1)), 2)
    assert (first.start, first.end, second.end) == (d("2023-03-01"), d("2023-03-08"), d("2023-03-15"))
