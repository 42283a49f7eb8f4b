"""The in-memory broker of ``billing simulate``: delays and retries follow the test clock."""

from __future__ import annotations

import heapq
import itertools
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import QueueNotFound
from dramatiq.middleware import Middleware

from jobs.clock import Clock


class ClockedStubBroker(StubBroker):
    """A StubBroker whose delayed messages (retries with backoff) wait on the process clock.

    dramatiq's StubBroker stamps a delayed message with a wall-clock eta and its worker releases
    it on the wall clock: on a test clock that jumps hours at a time a retry would come back at
    the wrong simulated instant (and a long backoff would stall the run in real time). Here a
    delayed message is held with its eta on the given clock until ``release_due`` is called at or
    after it; ``next_due`` tells the simulation when that is.
    """

    def __init__(self, clock: Clock, middleware: list[Middleware] | None = None) -> None:
        super().__init__(middleware=middleware)
        self.clock = clock
        self.held: list[tuple[datetime, int, dramatiq.Message[Any]]] = []
        self._order = itertools.count()

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        if delay is None:
            return super().enqueue(message)
        if message.queue_name not in self.queues:
            raise QueueNotFound(message.queue_name)  # type: ignore[no-untyped-call]
        self.emit_before("enqueue", message, delay)
        eta = self.clock.now() + timedelta(milliseconds=delay)
        heapq.heappush(self.held, (eta, next(self._order), message))
        self.emit_after("enqueue", message, delay)
        return message

    def next_due(self) -> datetime | None:
        return self.held[0][0] if self.held else None

    def release_due(self, now: datetime) -> int:
        """Enqueue every held message whose eta is ``now`` or earlier, in eta order."""
        released = 0
        while self.held and self.held[0][0] <= now:
            super().enqueue(heapq.heappop(self.held)[2])
            released += 1
        return released
