"""The rehearsal clock: a shared origin, real speed, aware instants only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobs.clock import ShiftedClock, SystemClock, clock_for, local_date


def test_a_shifted_clock_starts_at_its_instant_and_moves_at_real_speed() -> None:
    started_at = datetime.now(UTC) - timedelta(minutes=90)  # the stack started 90 minutes ago
    clock = ShiftedClock(datetime(2018, 11, 30, 10, tzinfo=UTC), started_at)
    elapsed = clock.now() - datetime(2018, 11, 30, 10, tzinfo=UTC)
    assert timedelta(minutes=90) <= elapsed < timedelta(minutes=91)


def test_processes_sharing_an_origin_agree_on_the_time() -> None:
    origin = datetime.now(UTC)
    start = datetime(2018, 11, 30, 10, tzinfo=UTC)
    first, second = ShiftedClock(start, origin), ShiftedClock(start, origin)
    assert abs(first.now() - second.now()) < timedelta(seconds=1)


def test_no_setting_means_real_time() -> None:
    assert isinstance(clock_for(None, None), SystemClock)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        ShiftedClock(datetime(2018, 11, 30, 10), datetime.now(UTC))


def test_local_date_is_the_accounts_today() -> None:
    instant = datetime(2018, 11, 30, 20, tzinfo=UTC)
    assert local_date(instant, "Asia/Tokyo").isoformat() == "2018-12-01"  # 05:00 the next day there
    assert local_date(instant, "America/Los_Angeles").isoformat() == "2018-11-30"
