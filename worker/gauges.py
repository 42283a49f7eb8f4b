"""Queue depths and dead letters as gauges, sampled by the relay (the process Prometheus scrapes).

Counters live where the work happens; these are states of Redis and the database, so one process
samples them every few seconds instead of every worker on every message.
"""

from __future__ import annotations

import threading
from collections import Counter

import redis
import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from jobs.metrics import DEAD_LETTERS, QUEUE_DEPTH
from jobs.outcomes import REPLAYABLE
from jobs.routes import QUEUES, ROUTES
from models.tables.rejection import Rejection
from models.tables.store import transaction

log = structlog.get_logger(__name__)

SAMPLE_SECONDS = 10.0


def queue_depths(client: redis.Redis, namespace: str) -> dict[str, dict[str, int]]:
    """Per queue: messages waiting (in flight included), delayed for a retry, dead in Redis."""
    prefix = f"{namespace}:dramatiq"
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.hlen(f"{prefix}:{queue}.msgs")
        pipe.hlen(f"{prefix}:{queue}.DQ.msgs")
        pipe.hlen(f"{prefix}:{queue}.XQ.msgs")
    counts = [int(value) for value in pipe.execute()]
    return {queue: dict(zip(("waiting", "delayed", "dead"), counts[3 * n: 3 * n + 3], strict=True))
            for n, queue in enumerate(QUEUES)}


def replayable_dead_letters(sessions: sessionmaker[Session]) -> Counter[str]:
    """Rejections a replay could cure that nobody replayed yet, by the queue their type routes to."""

    with transaction(sessions) as session:
        rows = session.execute(
            select(Rejection.message_type, func.count())
            .where(Rejection.code.in_(REPLAYABLE), Rejection.replayed_at.is_(None))
            .group_by(Rejection.message_type)
        ).all()
    queues: Counter[str] = Counter()
    for message_type, count in rows:
        route = ROUTES.get(message_type or "")
        queues[route.queue_name if route else "quarantine"] += int(count)
    return queues


def sample(client: redis.Redis, namespace: str, sessions: sessionmaker[Session]) -> None:
    """Set ``billing_queue_depth`` and ``billing_dead_letters`` (Redis' own dead letters included)."""
    depths = queue_depths(client, namespace)
    kept = replayable_dead_letters(sessions)
    for queue, depth in depths.items():
        QUEUE_DEPTH.labels(queue=queue).set(depth["waiting"] + depth["delayed"])
        DEAD_LETTERS.labels(queue=queue).set(kept[queue] + depth["dead"])


def run(client: redis.Redis, namespace: str, sessions: sessionmaker[Session], stop: threading.Event) -> None:
    """Sample until ``stop`` is set; a failed sample is logged and tried again next time."""
    while not stop.is_set():
        try:
            sample(client, namespace, sessions)
        except Exception:
            log.warning("gauges_not_sampled", exc_info=True)
        stop.wait(SAMPLE_SECONDS)
