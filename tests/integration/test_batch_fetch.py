"""The worker's Redis consumer refills its prefetch window in batches, on a real Redis.

dramatiq's own consumer runs one fetch script per acked message under load; ours waits until
half of the window is free. Every message still arrives once, in order, and an idle queue's
first message is fetched at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.broker import MessageProxy

from worker.redis_consumer import DELAY_QUEUE_POLL_MS, BatchFetchConsumer, BatchFetchRedisBroker

pytestmark = pytest.mark.integration

QUEUE = "batchfetch"
PREFETCH = 8


@pytest.fixture
def broker(redis_url: str, redis_namespace: str) -> Iterator[BatchFetchRedisBroker]:
    broker = BatchFetchRedisBroker(url=redis_url, namespace=f"{redis_namespace}:dramatiq")  # type: ignore[no-untyped-call]
    broker.declare_queue(QUEUE)
    yield broker
    broker.client.close()


def _enqueue(broker: BatchFetchRedisBroker, count: int) -> None:
    for index in range(count):
        broker.enqueue(dramatiq.Message(queue_name=QUEUE, actor_name="noop", args=(index,), kwargs={}, options={}))


def _fetch_sizes(consumer: BatchFetchConsumer) -> list[int]:
    """Record the size asked of every fetch script call the consumer makes."""
    sizes: list[int] = []
    fetch = consumer.broker.do_fetch

    def counting(queue_name: str, size: int) -> Any:
        sizes.append(size)
        return fetch(queue_name, size)

    consumer.broker.do_fetch = counting
    return sizes


def _next_message(consumer: BatchFetchConsumer) -> MessageProxy:
    for _ in range(1000):
        message = next(consumer)
        if message is not None:
            return message
    raise AssertionError("the consumer gave no message")


def test_a_busy_window_is_refilled_in_halves_and_every_message_arrives_once_in_order(
    broker: BatchFetchRedisBroker,
) -> None:
    _enqueue(broker, 40)
    consumer = broker.consume(QUEUE, prefetch=PREFETCH, timeout=100)
    assert isinstance(consumer, BatchFetchConsumer)
    sizes = _fetch_sizes(consumer)
    in_flight = [_next_message(consumer) for _ in range(PREFETCH)]  # the workers hold a full window
    seen = [message.args[0] for message in in_flight]
    while len(seen) < 40:
        consumer.ack(in_flight.pop(0))  # one worker finishes
        if (message := next(consumer)) is not None:
            in_flight.append(message)
            seen.append(message.args[0])
    assert seen == list(range(40))
    assert sizes[0] == PREFETCH
    assert all(size >= PREFETCH // 2 for size in sizes), sizes
    assert len(sizes) <= 1 + (40 - PREFETCH) // (PREFETCH // 2) + 1  # dramatiq's own would fetch 32 times
    for message in in_flight:
        consumer.ack(message)
    consumer.close()


def test_an_idle_queue_s_first_message_is_fetched_at_once(broker: BatchFetchRedisBroker) -> None:
    consumer = broker.consume(QUEUE, prefetch=PREFETCH, timeout=100)
    assert next(consumer) is None  # empty: one miss
    _enqueue(broker, 1)
    assert _next_message(consumer).args == (0,)
    consumer.close()


def test_delay_queues_keep_dramatiq_s_consumer_and_poll_at_most_once_a_second(broker: BatchFetchRedisBroker) -> None:
    delayed = broker.consume(dramatiq.common.dq_name(QUEUE), prefetch=PREFETCH, timeout=100)
    assert not isinstance(delayed, BatchFetchConsumer)
    assert delayed.timeout == DELAY_QUEUE_POLL_MS
    assert broker.consume(QUEUE, prefetch=PREFETCH, timeout=100).timeout == 100
