"""The simulation's broker holds delayed messages (retries) on the test clock, not the wall clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dramatiq
import pytest

from jobs.clock import ManualClock
from worker.clocked_broker import ClockedStubBroker

START = datetime(2018, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
def manual() -> Iterator[ManualClock]:
    yield ManualClock(START)


def test_a_delayed_message_waits_for_the_test_clock(manual: ManualClock) -> None:
    broker = ClockedStubBroker(manual, middleware=[])
    broker.declare_queue("q")
    late = dramatiq.Message(queue_name="q", actor_name="a", args=(1,), kwargs={}, options={})
    soon = dramatiq.Message(queue_name="q", actor_name="a", args=(2,), kwargs={}, options={})
    broker.enqueue(late, delay=3_600_000)
    broker.enqueue(soon, delay=1_000)
    assert broker.queues["q"].qsize() == 0
    assert broker.next_due() == START + timedelta(seconds=1)
    assert broker.release_due(START) == 0
    assert broker.release_due(START + timedelta(seconds=1)) == 1
    assert broker.next_due() == START + timedelta(hours=1)
    assert broker.release_due(START + timedelta(hours=2)) == 1
    assert broker.next_due() is None
    released = [dramatiq.Message.decode(broker.queues["q"].get()).args for _ in range(2)]
    assert released == [(2,), (1,)]


def test_an_undelayed_message_is_enqueued_at_once(manual: ManualClock) -> None:
    broker = ClockedStubBroker(manual, middleware=[])
    broker.declare_queue("q")
    broker.enqueue(dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={}))
    assert broker.queues["q"].qsize() == 1 and broker.next_due() is None
