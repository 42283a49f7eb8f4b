"""Queue depths and dead letters as gauges, sampled by the relay (the process Prometheus scrapes).

Counters live where the work happens; these are states of the broker and the database, so one
process samples them every few seconds instead of every worker on every message. On Redis the
counts are the sizes of dramatiq's message hashes (in-flight messages included); on RabbitMQ they
are the ready-message counts of a passive ``queue.declare`` (RabbitMQ's own count: messages
delivered to a worker and not yet acknowledged are not in it). The management API is not needed.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pika
import pika.exceptions
import redis
import structlog
from dramatiq.common import dq_name as dramatiq_dq
from dramatiq.common import xq_name as dramatiq_xq
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from jobs.metrics import DEAD_LETTERS, QUEUE_DEPTH
from jobs.outcomes import REPLAYABLE
from jobs.routes import QUEUES, ROUTES
from models.tables.rejection import Rejection
from models.tables.store import transaction
from worker.settings import Settings

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


QueueDepths = dict[str, dict[str, int]]


def rabbitmq_queue_depths(url: str, timeout: float = 5.0) -> QueueDepths:
    """Per queue: ready messages, delayed ones (``.DQ``) and dead ones (``.XQ``), by passive declares.

    A queue that does not exist yet (nothing was ever sent to it) counts 0; the passive declare
    never creates one.
    """
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = parameters.blocked_connection_timeout = timeout
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        depths: QueueDepths = {}
        for queue in QUEUES:
            counts = []
            for name in (queue, dramatiq_dq(queue), dramatiq_xq(queue)):
                try:
                    counts.append(int(channel.queue_declare(name, passive=True).method.message_count))
                except pika.exceptions.ChannelClosedByBroker:  # 404: not declared yet
                    counts.append(0)
                    channel = connection.channel()
            depths[queue] = dict(zip(("waiting", "delayed", "dead"), counts, strict=True))
        return depths
    finally:
        connection.close()


def depth_reader(settings: Settings) -> Callable[[], QueueDepths]:
    """How to read the configured broker's queue depths."""
    if settings.broker_kind == "rabbitmq":
        assert settings.broker_url is not None
        url = settings.broker_url
        return lambda: rabbitmq_queue_depths(url)
    client = redis.Redis.from_url(settings.broker_redis_url, socket_timeout=5)
    return lambda: queue_depths(client, settings.namespace)


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


def sample(depths: QueueDepths, sessions: sessionmaker[Session]) -> None:
    """Set ``billing_queue_depth`` and ``billing_dead_letters`` (the broker's own dead letters included)."""
    kept = replayable_dead_letters(sessions)
    for queue, depth in depths.items():
        QUEUE_DEPTH.labels(queue=queue).set(depth["waiting"] + depth["delayed"])
        DEAD_LETTERS.labels(queue=queue).set(kept[queue] + depth["dead"])


def run(read_depths: Callable[[], QueueDepths], sessions: sessionmaker[Session], stop: threading.Event) -> None:
    """Sample until ``stop`` is set; a failed sample is logged and tried again next time."""
    while not stop.is_set():
        try:
            sample(read_depths(), sessions)
        except Exception:
            log.warning("gauges_not_sampled", exc_info=True)
        stop.wait(SAMPLE_SECONDS)
