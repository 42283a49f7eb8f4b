"""``jobs.wakeups.first_hour_of_local_date``: the first whole hour at which a zone reaches a local date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.wakeups import first_hour_of_local_date, whole_hour_at_or_after

LONG_AGO = datetime(1999, 1, 1, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("zone", "day", "hour"), [
    ("UTC", "2022-09-11", "2022-09-11T00:00"),
    ("Europe/Paris", "2021-03-28", "2021-03-27T23:00"),  # the spring-forward day starts at 00:00 CET
    ("Europe/Paris", "2021-03-29", "2021-03-28T22:00"),  # the day after, in CEST
    ("America/Santiago", "2022-09-11", "2022-09-11T04:00"),  # no midnight that day: it starts at 01:00 -03
    ("America/Santiago", "2022-04-03", "2022-04-03T04:00"),  # at 00:00 -03 clocks go back to 2 April 23:00 -04
    ("Pacific/Kiritimati", "2022-09-11", "2022-09-10T10:00"),  # +14
    ("Etc/GMT+12", "2022-09-11", "2022-09-11T12:00"),  # -12
    ("Asia/Kathmandu", "2022-09-11", "2022-09-10T19:00"),  # midnight is 18:15 UTC: the next whole hour
    ("Pacific/Chatham", "2022-09-25", "2022-09-24T12:00"),  # midnight at +12:45 is 11:15 UTC
    ("No/Such_Zone", "2022-09-11", "2022-09-10T10:00"),  # the bill run counts an unknown zone as UTC+14
])
def test_first_hour_of_a_local_date(zone: str, day: str, hour: str) -> None:
    assert first_hour_of_local_date(zone, date.fromisoformat(day), LONG_AGO) == utc(hour)


def test_never_at_or_before_the_hour_just_run() -> None:
    after = utc("2022-09-11T06:00")
    assert first_hour_of_local_date("UTC", date(2022, 9, 1), after) == after + timedelta(hours=1)


def test_whole_hours() -> None:
    assert whole_hour_at_or_after(utc("2022-09-11T06:00")) == utc("2022-09-11T06:00")
    assert whole_hour_at_or_after(utc("2022-09-11T06:00:00.000001")) == utc("2022-09-11T07:00")


ZONES = ["Europe/Paris", "America/New_York", "America/Santiago", "America/Havana", "Australia/Lord_Howe",
         "Asia/Kolkata", "Pacific/Chatham", "Pacific/Kiritimati", "Etc/GMT+12", "America/Sao_Paulo"]


@settings(max_examples=300, deadline=None)
@given(zone=st.sampled_from(ZONES), day=st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)))
def test_the_hour_before_was_still_an_earlier_date(zone: str, day: date) -> None:
    hour = first_hour_of_local_date(zone, day, LONG_AGO)
    assert hour.minute == 0 and hour.second == 0
    assert hour.astimezone(ZoneInfo(zone)).date() >= day
    earlier = hour - timedelta(hours=1)
    while earlier > hour - timedelta(hours=40):  # no earlier whole hour had reached the date
        assert earlier.astimezone(ZoneInfo(zone)).date() < day
        earlier -= timedelta(hours=1)
