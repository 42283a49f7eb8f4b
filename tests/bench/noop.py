"""Part 2b: the same number of same-sized messages through a no-op actor, same worker settings.

Same processes, threads and ``dramatiq_*`` variables (prefetch, poll timeout) as the product
worker really ran with, read from its processes; the messages carry signed onboarding envelopes.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

from tests.bench import processes
from tests.bench.bodies import catch_up_body
from tests.bench.checks import Checks
from tests.bench.context import Context
from tests.bench.drain import queue_leftovers, wait_drain
from tests.bench.noop_actors import ACTOR, QUEUE
from tests.bench.sampler import Sampler
from tests.bench.throughput import Throughput

BATCH = 500


def enqueue_noops(ctx: Context, messages: int, today: date) -> float:
    """Pipelined like ``send_many``, through the same broker script, onto the no-op queue."""
    import dramatiq

    from worker.client import _enqueue_pipelined

    now = datetime.now(UTC)
    begin = time.perf_counter()
    batch: list[Any] = []
    for index in range(messages):
        envelope = ctx.signer.envelope("account.onboard", catch_up_body(f"nop-{index:07d}", today), now=now)
        batch.append(dramatiq.Message(queue_name=QUEUE, actor_name=ACTOR, args=(envelope,), kwargs={}, options={}))
        if len(batch) == BATCH or index == messages - 1:
            _enqueue_pipelined(ctx.broker, batch)
            batch = []
    return messages / (time.perf_counter() - begin)


def run_noop(ctx: Context, messages: int, today: date) -> Throughput:
    enqueue_rate = enqueue_noops(ctx, messages, today)
    env = ctx.env(**ctx.worker_env)
    env.setdefault("dramatiq_worker_timeout", "100")  # as worker.processes.run_worker, if none was read
    args = ["-m", "dramatiq", "tests.bench.noop_actors:setup", "--processes", str(ctx.processes),
            "--threads", str(ctx.threads), "--queues", QUEUE]
    worker = processes.start("worker-noop", args, env, ctx.logs)
    launched = time.monotonic()
    try:
        with Sampler(ctx.conninfo, ctx.redis_pid, worker) as sampler:
            drain = wait_drain(ctx.redis, ctx.queue_key(QUEUE), messages, worker, launched, timeout=600.0)
    finally:
        processes.stop(worker)
    checks = Checks(f"no-op {messages:,}")
    checks.equal("no-op queue left (waiting, delayed, dead)", {"waiting": 0, "delayed": 0, "dead": 0},
                 queue_leftovers(ctx.redis, ctx.queue_key(QUEUE)))
    return Throughput("no-op dramatiq actor", messages, drain.per_second, drain.drain_seconds,
                      drain.startup_seconds, sampler.usage, checks, enqueue_per_second=enqueue_rate)
