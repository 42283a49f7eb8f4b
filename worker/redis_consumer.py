"""dramatiq's Redis broker with a consumer that refills its prefetch window in batches.

dramatiq's Redis consumer fetches as soon as one slot of its window (``dramatiq_queue_prefetch``,
2 × threads by default) is free. Under load a slot frees with every ack, so it runs one Redis script
per message just to fetch that message, in the consumer thread, holding the GIL the worker threads
need. This consumer waits, while the window is more than half full, until half of it is free, then
fetches that half in one call: the same messages in the same order, about a tenth of the fetches.
An idle or lightly loaded queue is unaffected: its window is empty, so every fetch is immediate.
"""

from __future__ import annotations

import time

from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import dq_name

#: How long the consumer thread sleeps while too few slots are free. Short: between polls it also
#: moves delayed messages, and a worker thread that finishes must find the next message waiting.
BUSY_POLL_SECONDS = 0.002

#: The longest an idle delay queue waits between polls. A delayed message (a retry's backoff, at
#: least a second) is fetched early and held until its time, so this only matters for one whose
#: delay is shorter than the poll: it may start up to this late.
DELAY_QUEUE_POLL_MS = 1_000
DELAY_QUEUE_SUFFIX = dq_name("")


class BatchFetchConsumer(_RedisConsumer):
    """A ``_RedisConsumer`` that fetches only once half of its prefetch window is free."""

    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]
        self.refill_at = max(1, prefetch // 2)

    def __next__(self) -> MessageProxy | None:
        if not self.message_cache:
            free = self.prefetch - self.outstanding_message_count
            if 0 < free < self.refill_at:  # full (free == 0) keeps dramatiq's own backoff
                time.sleep(BUSY_POLL_SECONDS)
                return None
        proxy: MessageProxy | None = super().__next__()  # type: ignore[no-untyped-call]
        return proxy


class BatchFetchRedisBroker(RedisBroker):
    """dramatiq's ``RedisBroker`` whose queues are consumed by ``BatchFetchConsumer``.

    Each queue also has a delay queue with a consumer of its own, which only moves delayed
    messages into the process to wait for their time. That one keeps dramatiq's consumer (it
    should hold every delayed message it can, to release each at its time) and, idle, polls at
    most once a ``DELAY_QUEUE_POLL_MS``, while the queues' own poll at the worker's idle poll.
    """

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        if queue_name.endswith(DELAY_QUEUE_SUFFIX):
            consumer: Consumer = super().consume(queue_name, prefetch, max(timeout, DELAY_QUEUE_POLL_MS))
            return consumer
        return BatchFetchConsumer(self, queue_name, prefetch, timeout)
