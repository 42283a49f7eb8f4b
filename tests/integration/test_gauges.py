"""Queue depths and dead letters as the relay's gauges: read from Redis and the database as they are."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
from sqlalchemy import Engine, insert

from jobs.metrics import DEAD_LETTERS, QUEUE_DEPTH, REGISTRY
from models.tables.rejection import Rejection
from models.tables.store import make_session_factory
from worker.gauges import queue_depths, sample

pytestmark = pytest.mark.integration


def gauge(name: str, queue: str) -> float:
    value = REGISTRY.get_sample_value(name, {"queue": queue})
    assert value is not None
    return value


def test_gauges_count_waiting_delayed_and_dead_messages(
    clean_pg: Engine, redis_url: str, redis_namespace: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    prefix = f"{redis_namespace}:dramatiq"
    client.hset(f"{prefix}:onboarding.msgs", mapping={"a": "1", "b": "2", "c": "3"})
    client.hset(f"{prefix}:onboarding.DQ.msgs", mapping={"d": "4"})
    client.hset(f"{prefix}:balances.XQ.msgs", mapping={"e": "5"})
    now = datetime.now(UTC)
    with clean_pg.begin() as connection:
        connection.execute(insert(Rejection), [
            {"message_type": "balance_line.create", "code": "unknown_account", "reason": "r", "payload": "{}",
             "created_at": now, "replayed_at": None},
            {"message_type": "balance_line.create", "code": "retries_exhausted", "reason": "r", "payload": "{}",
             "created_at": now, "replayed_at": now},  # replayed already: not waiting for anyone
            {"message_type": "account.onboard", "code": "invalid", "reason": "r", "payload": "{}",
             "created_at": now, "replayed_at": None},  # needs a corrected message, not a replay
        ])
    assert queue_depths(client, redis_namespace)["onboarding"] == {"waiting": 3, "delayed": 1, "dead": 0}
    sample(queue_depths(client, redis_namespace), make_session_factory(clean_pg))
    assert gauge(QUEUE_DEPTH._name, "onboarding") == 4
    assert gauge(QUEUE_DEPTH._name, "balances") == 0
    assert gauge(DEAD_LETTERS._name, "balances") == 2  # one in Redis, one kept in the database
    assert gauge(DEAD_LETTERS._name, "onboarding") == 0
