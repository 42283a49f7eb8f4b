"""The database goes away under a running worker (a proxy in front of PostgreSQL is cut).

A short outage is a transient fault: the messages are retried with backoff and all applied once,
none rejected. An outage longer than the retries dead-letters the message in Redis; once the
database is back the scheduler's sweep records it where `billing dlq` sees it, and a replay
applies it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, make_url

from tests.e2e.stack import billing, onboarding, running, scalar, stack_environment, wait_for
from tests.e2e.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(5432)
    yield proxy
    proxy.close()


def through(proxy: TcpProxy, pg_url: str) -> str:
    return make_url(pg_url).set(port=proxy.port).render_as_string(hide_password=False)


WORKER_AND_RELAY = (["worker", "--processes", "1", "--threads", "4"], ["relay"])


def test_a_short_outage_is_retried_and_loses_nothing(
    proxy: TcpProxy, clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str, tmp_path: Path,
) -> None:
    env = stack_environment(through(proxy, pg_url), redis_url, redis_namespace,
                            min_backoff_ms="200", max_backoff_ms="2000", max_retries="8")
    bodies = tmp_path / "onboard.jsonl"
    bodies.write_text("".join(json.dumps(onboarding(f"acct-{n:03d}")) + "\n" for n in range(120)))
    billing(env, "enqueue", "account.onboard", str(bodies))
    with running(env, tmp_path / "stack.log", *WORKER_AND_RELAY):
        wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM invoices") >= 20, 60, "the first invoices")
        proxy.cut()
        time.sleep(3)
        proxy.restore()
        wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM invoices") == 120, 120, "every invoice")
        wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0, 60, "the relay")
    assert scalar(clean_pg, "SELECT count(DISTINCT account_id) FROM invoices") == 120
    assert scalar(clean_pg, "SELECT count(*) FROM invoice_lines") == 360
    assert scalar(clean_pg, "SELECT count(*) FROM rejections") == 0
    events = redis.Redis.from_url(redis_url).xrange(f"{redis_namespace}:events:invoice")
    assert len({json.loads(fields[b"event"])["id"] for _, fields in events}) == 120


def test_a_long_outage_dead_letters_into_the_database_and_ops_replay_it(
    proxy: TcpProxy, clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str, tmp_path: Path,
) -> None:
    env = stack_environment(through(proxy, pg_url), redis_url, redis_namespace,
                            min_backoff_ms="100", max_backoff_ms="200", max_retries="2")
    direct = stack_environment(pg_url, redis_url, redis_namespace)
    client = redis.Redis.from_url(redis_url)
    dead = f"{redis_namespace}:dramatiq:onboarding.XQ.msgs"
    with running(env, tmp_path / "stack.log", *WORKER_AND_RELAY):
        proxy.cut()
        body = tmp_path / "late.json"
        body.write_text(json.dumps(onboarding("patient")))
        billing(direct, "enqueue", "account.onboard", str(body))
        wait_for(lambda: client.hlen(dead) == 1, 60, "the message in Redis' dead-letter set")
        proxy.restore()

        billing(direct, "scheduler", "--once")  # its sweep records Redis dead letters
        assert client.hlen(dead) == 0
        assert scalar(clean_pg, "SELECT count(*) FROM rejections WHERE code = 'retries_exhausted'") == 1
        listed = billing(direct, "dlq", "list").stdout
        assert "retries_exhausted" in listed and "OperationalError" in listed
        rejection_id = scalar(clean_pg, "SELECT id FROM rejections")

        billing(direct, "dlq", "replay", str(rejection_id))
        wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM invoices") == 1, 60, "the replayed onboarding")
        assert billing(direct, "dlq", "replay", str(rejection_id), check=False).returncode == 2  # once only
    assert scalar(clean_pg, "SELECT count(*) FROM invoice_lines") == 3
    assert scalar(clean_pg, "SELECT count(*) FROM rejections") == 1
    assert scalar(clean_pg, "SELECT count(*) FROM rejections WHERE envelope IS NULL") == 1  # dropped once replayed
