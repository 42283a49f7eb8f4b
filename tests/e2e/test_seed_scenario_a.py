"""The seed's scenario A on the real services: `billing enqueue` of examples/acme-onboard.json to a
`billing worker` and a `billing relay` on PostgreSQL and Redis, on the day the seed onboarded it
(a rehearsal clock): one invoice of 70.00 with its three lines in the database, one event on the stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, text

from tests.e2e.stack import billing, running, scalar, stack_environment, wait_for

pytestmark = pytest.mark.e2e

SEED = Path(__file__).resolve().parents[2] / "examples" / "acme-onboard.json"


def test_scenario_a_gives_one_invoice_of_70_and_one_event(
    clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str, tmp_path: Path
) -> None:
    env = stack_environment(pg_url, redis_url, redis_namespace, clock_start="2018-11-30T10:00:00Z")
    stream = f"{redis_namespace}:events:invoice"
    with running(env, tmp_path / "stack.log", ["worker", "--processes", "1", "--threads", "2"], ["relay"]):
        billing(env, "enqueue", "account.onboard", str(SEED))
        wait_for(lambda: redis.Redis.from_url(redis_url).xlen(stream) == 1, 60, "the invoice.created event")
    with clean_pg.connect() as connection:
        number, issued, total = connection.execute(text("SELECT number, issue_date, total_minor FROM invoices")).one()
        lines = connection.execute(text(
            "SELECT period_start, period_end, days, period_days, amount_minor FROM invoice_lines ORDER BY position"
        )).all()
    assert (number, str(issued), total) == ("INV-2018-000001", "2018-11-30", 7000)
    assert [(str(a), str(b), d, p, m) for a, b, d, p, m in lines] == [
        ("2018-10-05", "2018-10-14", 10, 30, 1000),  # the stub: 10 of the 30 days of 15 Sep .. 14 Oct
        ("2018-10-15", "2018-11-14", 31, 31, 3000),
        ("2018-11-15", "2018-12-14", 30, 30, 3000),
    ]
    [(_, fields)] = redis.Redis.from_url(redis_url).xrange(stream)
    event = json.loads(fields[b"event"])
    assert (event["type"], event["subject"], event["data"]["number"], event["data"]["total"]) == (
        "invoice.created", "acme", "INV-2018-000001", "70.00")
    assert scalar(clean_pg, "SELECT count(*) FROM rejections") == 0
