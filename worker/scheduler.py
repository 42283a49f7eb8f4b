"""The built-in scheduler: a bill-run trigger every hour, and a sweep of parked messages.

Bill runs are level-triggered ("bill everything due up to now"), so a late, skipped or doubled
tick costs nothing: the next one finds every period that fell due meanwhile, and unique keys make
a second trigger for the same date a no-op.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import structlog

log = structlog.get_logger(__name__)

SWEEP_SECONDS = 60.0


def seconds_to_next_tick(now: float, interval: int) -> float:
    """Ticks fall on whole multiples of ``interval`` since the epoch (whole hours by default)."""
    return interval - (now % interval)


def tick() -> None:
    """Send one bill-run trigger for "now"."""
    from jobs.client import Signer, send
    from worker.broker import install
    from worker.settings import get_settings

    settings = get_settings()
    broker = install(settings)
    message_id = send(broker, "bill_run.trigger", {}, Signer.from_settings(settings), now=datetime.now(UTC))
    log.info("bill_run_triggered", message_id=message_id)


def sweep() -> None:
    """Re-send parked messages whose account exists, reject expired ones, record Redis dead letters."""
    import redis

    from jobs import parking, runtime
    from jobs.routes import QUEUES
    from worker import clock, dead_letters
    from worker.broker import install

    rt = runtime.get()
    resumed, expired = parking.sweep(rt.sessions, install(rt.settings), clock.current().now())
    if resumed or expired:
        log.info("parked_messages_swept", resumed=resumed, rejected=expired)
    client = redis.Redis.from_url(rt.settings.redis_url)
    recorded = dead_letters.sweep(client, f"{rt.settings.namespace}:dramatiq", QUEUES, rt.sessions,
                                  datetime.now(UTC))
    if recorded:
        log.warning("dead_letters_recorded", count=recorded)


def run_scheduler(*, once: bool = False) -> int:
    from worker.settings import get_settings

    interval = get_settings().scheduler_interval_seconds
    stop = threading.Event()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    tick()
    if once:
        sweep()
        return 0
    next_tick = time.time() + seconds_to_next_tick(time.time(), interval)
    while not stop.is_set():
        try:
            sweep()
            if time.time() >= next_tick:
                tick()
                next_tick = time.time() + seconds_to_next_tick(time.time(), interval)
        except Exception:
            log.exception("scheduler_tick_failed")
        stop.wait(min(SWEEP_SECONDS, max(0.1, next_tick - time.time())))
    return 0
