"""Part 3: enqueue → ``invoice.created`` on the Redis Stream, at a steady low rate.

``billing worker`` and ``billing relay`` run and are idle (a few warm-up messages first, not
counted). One fresh account per message (one-period catch-up), sent at ``rate`` per second with
``worker.client.send``; a reader thread blocks on ``XREAD`` and matches each event's subject (the
account) to its send time. The event's ``time`` (when the actor received the message) splits the
latency into queue pickup and processing + relay.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import redis

from tests.bench import processes
from tests.bench.bodies import one_period_body
from tests.bench.checks import Checks
from tests.bench.context import Context
from tests.bench.database import connect, count, truncate_all
from tests.bench.sampler import Sampler, Usage

WARM_UP = 3
RELAY_READY = "relay_started"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 600 values is the 594th smallest)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


class StreamReader(threading.Thread):
    """Records (arrival time, actor start time) per event subject, and how often each arrived."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        super().__init__(daemon=True, name="bench-stream-reader")
        self.client, self.key = client, key
        self.arrivals: dict[str, tuple[float, float]] = {}
        self.seen: dict[str, int] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        last = "0-0"
        while not self.halt.is_set():
            answer: Any = self.client.xread({self.key: last}, block=200)
            for _, entries in answer or []:
                arrived = time.time()
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    event = json.loads(fields[b"event"])
                    subject = str(event["subject"])
                    started = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
                    self.seen[subject] = self.seen.get(subject, 0) + 1
                    self.arrivals.setdefault(subject, (arrived, started))


@dataclass
class LatencyResult:
    rate: float
    sent: int
    total_ms: list[float]
    pickup_ms: list[float]
    usage: Usage
    checks: Checks
    relay_interval_seconds: float

    def p(self, which: str, fraction: float) -> float:
        values = self.total_ms if which == "total" else self.pickup_ms if which == "pickup" else [
            total - pickup for total, pickup in zip(self.total_ms, self.pickup_ms, strict=True)]
        return percentile(values, fraction)


def _send_all(ctx: Context, prefix: str, count_: int, rate: float, today: date) -> dict[str, float]:
    from worker.client import send

    sent: dict[str, float] = {}
    begin = time.monotonic()
    for index in range(count_):
        pause = begin + index / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        account = f"{prefix}-{index:06d}"
        sent[account] = time.time()
        send(ctx.broker, "account.onboard", one_period_body(account, today), ctx.signer, now=datetime.now(UTC))
    return sent


def _await_events(reader: StreamReader, accounts: dict[str, float], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(account in reader.arrivals for account in accounts):
        time.sleep(0.05)


def run_latency(ctx: Context, seconds: float, rate: float, today: date) -> LatencyResult:
    truncate_all(ctx.conninfo)
    env = ctx.env()
    worker = processes.billing_worker(env, ctx.logs, processes=ctx.processes, threads=ctx.threads,
                                      name="worker-latency")
    relay = processes.relay(env, ctx.logs)
    reader = StreamReader(redis.Redis.from_url(ctx.services.redis_url), ctx.services.stream_key)
    try:
        processes.wait_ready(worker, ctx.processes)
        _wait_relay(relay)
        reader.start()
        warm = _send_all(ctx, "warm", WARM_UP, 2.0, today)
        _await_events(reader, warm, 30.0)
        time.sleep(1.0)
        with Sampler(ctx.conninfo, ctx.redis_pid, worker) as sampler:
            sent = _send_all(ctx, "lat", max(1, round(seconds * rate)), rate, today)
            _await_events(reader, sent, 30.0)
    finally:
        reader.halt.set()
        processes.stop(worker)
        processes.stop(relay)
        reader.join(5)
    measured = [account for account in sent if account in reader.arrivals]
    total = [(reader.arrivals[a][0] - sent[a]) * 1000 for a in measured]
    pickup = [(reader.arrivals[a][1] - sent[a]) * 1000 for a in measured]
    return LatencyResult(rate, len(sent), total, pickup, sampler.usage,
                         _check(ctx, reader, sent, warm), ctx.settings.relay_interval_seconds)


def _wait_relay(relay: processes.Started, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while RELAY_READY not in relay.log_text():
        if relay.popen.poll() is not None or time.monotonic() > deadline:
            raise processes.ProcessFailed(f"relay did not start:\n{processes.tail(relay)}")
        time.sleep(0.05)


def _check(ctx: Context, reader: StreamReader, sent: dict[str, float], warm: dict[str, float]) -> Checks:
    checks = Checks(f"latency {len(sent):,}")
    checks.equal("events received", len(sent), sum(1 for account in sent if account in reader.arrivals))
    checks.equal("events per account", {1}, {reader.seen.get(account, 0) for account in sent})
    with connect(ctx.conninfo) as conn:
        checks.equal("invoices", len(sent) + len(warm), count(conn, "invoices"))
        checks.equal("rejections", 0, count(conn, "rejections"))
    return checks

