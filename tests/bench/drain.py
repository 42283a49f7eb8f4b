"""Timing a queue drain without touching the actor: poll the broker's message hash.

dramatiq's Redis broker deletes a message from ``<prefix>:<queue>.msgs`` when it is acked, that is
after the actor returned, so ``HLEN`` every 10 ms gives the first and the last ack. The drain rate
is (N - 1) / (last ack - first ack) and excludes worker start-up, which is recorded separately.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from tests.bench.processes import ProcessFailed, Started, tail


@dataclass(frozen=True)
class Drain:
    messages: int
    startup_seconds: float
    drain_seconds: float

    @property
    def per_second(self) -> float:
        return (self.messages - 1) / self.drain_seconds if self.drain_seconds > 0 else float("inf")


def wait_drain(client: redis.Redis, queue_key: str, messages: int, worker: Started, launched: float,
               timeout: float) -> Drain:
    """Poll until the queue's hash is empty; ``launched`` is when the worker was started (monotonic)."""
    first: float | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = int(client.hlen(f"{queue_key}.msgs"))
        now = time.monotonic()
        if first is None and left < messages:
            first = now
        if left == 0:
            assert first is not None
            return Drain(messages, first - launched, now - first)
        if worker.popen.poll() is not None:
            raise ProcessFailed(f"{worker.name} exited with {worker.popen.returncode}:\n{tail(worker)}")
        time.sleep(0.01)
    raise ProcessFailed(f"{queue_key} still holds messages after {timeout:.0f} s:\n{tail(worker)}")


def queue_leftovers(client: redis.Redis, queue_key: str) -> dict[str, int]:
    """Messages still waiting, delayed (retries) or dead for one queue: all zero after a clean drain."""
    return {"waiting": int(client.hlen(f"{queue_key}.msgs")), "delayed": int(client.hlen(f"{queue_key}.DQ.msgs")),
            "dead": int(client.hlen(f"{queue_key}.XQ.msgs"))}


def wait_published(conninfo: str, relay: Started, timeout: float) -> None:
    """Block until the relay has numbered and published every event (no unsent outbox row)."""
    from tests.bench.database import connect, scalar

    deadline = time.monotonic() + timeout
    with connect(conninfo) as conn:
        while time.monotonic() < deadline:
            if not scalar(conn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
                return
            if relay.popen.poll() is not None:
                raise ProcessFailed(f"relay exited:\n{tail(relay)}")
            time.sleep(0.05)
    raise ProcessFailed(f"events not published after {timeout:.0f} s:\n{tail(relay)}")
