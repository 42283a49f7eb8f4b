"""The built-in scheduler: a bill-run trigger every hour, and a sweep of parked messages and dead letters.

Bill runs are level-triggered ("bill everything due up to now"), so a late, skipped or doubled
tick costs nothing: the next one finds every period that fell due meanwhile, and unique keys make
a second trigger for the same date a no-op. The tick never depends on a sweep: a sweep that fails
is logged and tried again a minute later, while the hourly trigger goes out on time.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import dramatiq
import redis
import structlog

from jobs import parking
from jobs.context import JobContext
from jobs.routes import QUEUES
from jobs.signer import Signer
from worker import dead_letters
from worker.broker import build_broker
from worker.client import send
from worker.commands import wall_clock
from worker.context import build_context
from worker.settings import Settings, get_settings

log = structlog.get_logger(__name__)

SWEEP_SECONDS = 60.0


def seconds_to_next_tick(now: float, interval: int) -> float:
    """Ticks fall on whole multiples of ``interval`` since the epoch (whole hours by default)."""
    return interval - (now % interval)


def tick(broker: dramatiq.Broker, signer: Signer) -> None:
    """Send one bill-run trigger for "now"."""
    message_id = send(broker, "bill_run.trigger", {}, signer, now=wall_clock())
    log.info("bill_run_triggered", message_id=message_id)


def sweep(ctx: JobContext, settings: Settings) -> None:
    """Re-send parked messages whose account exists, reject expired ones, record the broker's dead letters."""
    resumed, expired = parking.sweep(ctx, ctx.now())
    if resumed or expired:
        log.info("parked_messages_swept", resumed=resumed, rejected=expired)
    if settings.broker_kind == "rabbitmq":
        assert settings.broker_url is not None
        recorded = dead_letters.sweep_rabbitmq(ctx, settings.broker_url, QUEUES, wall_clock())
    else:
        client = redis.Redis.from_url(settings.broker_redis_url)
        recorded = dead_letters.sweep(ctx, client, f"{settings.namespace}:dramatiq", QUEUES, wall_clock(),
                                      settings.max_age_ms)
    if recorded:
        log.warning("dead_letters_recorded", count=recorded)


def _guarded(what: str, action: Callable[[], None]) -> None:
    """Run one duty of the scheduler; a failure is logged and never stops the others."""
    try:
        action()
    except Exception:
        log.exception(f"scheduler_{what}_failed")


def run_scheduler(*, once: bool = False) -> int:
    settings = get_settings()
    broker = build_broker(settings)
    ctx = build_context(settings, broker)
    signer = Signer.from_settings(settings)
    interval = settings.scheduler_interval_seconds
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    _guarded("tick", lambda: tick(broker, signer))
    if once:
        _guarded("sweep", lambda: sweep(ctx, settings))
        return 0
    next_tick = time.time() + seconds_to_next_tick(time.time(), interval)
    next_sweep = time.time()
    while not stop.is_set():
        if time.time() >= next_sweep:
            _guarded("sweep", lambda: sweep(ctx, settings))
            next_sweep = time.time() + SWEEP_SECONDS
        if time.time() >= next_tick:
            _guarded("tick", lambda: tick(broker, signer))
            next_tick = time.time() + seconds_to_next_tick(time.time(), interval)
        stop.wait(max(0.1, min(next_sweep, next_tick) - time.time()))
    return 0
