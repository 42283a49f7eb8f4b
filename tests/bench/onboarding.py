"""Part 2a: N ``account.onboard`` messages (three-period catch-up) through ``billing worker``.

All messages are enqueued first (``worker.client.send_many``, pipelined), then the workers start;
the figure is the drain rate between the first and the last ack (``tests.bench.drain``).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

from tests.bench import processes
from tests.bench.bodies import Expected, catch_up_body
from tests.bench.checks import Checks
from tests.bench.context import Context
from tests.bench.database import connect, count, scalar, truncate_all
from tests.bench.drain import queue_leftovers, wait_drain, wait_published
from tests.bench.sampler import Sampler
from tests.bench.throughput import Throughput

QUEUE = "onboarding"


def onboard_account_id(index: int) -> str:
    return f"onb-{index:07d}"


def enqueue_onboardings(ctx: Context, messages: int, today: date) -> float:
    """Sign and pipeline ``messages`` onboardings; return the enqueue rate."""
    from worker.client import send_many

    bodies = (("account.onboard", catch_up_body(onboard_account_id(i), today)) for i in range(messages))
    begin = time.perf_counter()
    sent = send_many(ctx.broker, bodies, ctx.signer, now=datetime.now(UTC))
    seconds = time.perf_counter() - begin
    if sent != messages:
        raise RuntimeError(f"sent {sent} of {messages} messages")
    return messages / seconds


def run_onboarding(ctx: Context, messages: int, expected: Expected, today: date) -> Throughput:
    truncate_all(ctx.conninfo)
    enqueue_rate = enqueue_onboardings(ctx, messages, today)
    relay = processes.relay(ctx.env(), ctx.logs)  # numbers the invoices and publishes their events, as in production
    worker = processes.billing_worker(ctx.env(), ctx.logs, processes=ctx.processes, threads=ctx.threads,
                                      name="worker-onboarding")
    launched = time.monotonic()
    try:
        with Sampler(ctx.conninfo, ctx.redis_pid, worker) as sampler:
            drain = wait_drain(ctx.redis, ctx.queue_key(QUEUE), messages, worker, launched,
                               timeout=max(600.0, messages / 10))
        ctx.worker_env = processes.dramatiq_env(worker)
        wait_published(ctx.conninfo, relay, max(600.0, messages / 10))
    finally:
        processes.stop(worker)
        processes.stop(relay)
    return Throughput("billing worker, account.onboard", messages, drain.per_second, drain.drain_seconds,
                      drain.startup_seconds, sampler.usage, check_onboarding(ctx, messages, expected, "onboarding"),
                      enqueue_per_second=enqueue_rate)


def check_onboarding(ctx: Context, messages: int, expected: Expected, part: str) -> Checks:
    """The rows one onboarding writes, ``messages`` times over, and nothing left on the queue."""
    checks = Checks(f"{part} {messages:,}")
    with connect(ctx.conninfo) as conn:
        for table, per_message in (("accounts", 1), ("subscriptions", 1), ("invoices", 1),
                                   ("invoice_lines", expected.lines), ("outbox", 1), ("processed_messages", 1),
                                   ("message_deliveries", 1)):
            checks.equal(table, messages * per_message, count(conn, table))
        checks.equal("accounts invoiced (no duplicates)", messages,
                     scalar(conn, "SELECT count(DISTINCT account_id) FROM invoices"))
        checks.equal("total invoiced (minor units)", messages * expected.total_minor,
                     int(scalar(conn, "SELECT coalesce(sum(total_minor), 0) FROM invoices")))
        checks.equal("deliveries per message", 1, scalar(conn, "SELECT max(deliveries) FROM message_deliveries"))
        checks.equal("invoice counter (gapless)", messages,
                     scalar(conn, "SELECT coalesce(sum(last_number), 0) FROM invoice_counters"))
        checks.equal("rejections", 0, count(conn, "rejections"))
    checks.equal("onboarding queue left (waiting, delayed, dead)", {"waiting": 0, "delayed": 0, "dead": 0},
                 queue_leftovers(ctx.redis, ctx.queue_key(QUEUE)))
    return checks
