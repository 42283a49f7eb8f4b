"""A message that keeps killing its worker is quarantined, counted in the database, not redelivered forever.

dramatiq does not count deliveries that SIGKILL cut short, so the worker counts them itself before
any work. Here the earlier deaths are the count already stored for the envelope (as five killed
deliveries would have left it); the next delivery is quarantined and the message behind it runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from jobs.signer import Signer
from tests.e2e.stack import SECRET, onboarding, running, scalar, stack_environment, wait_for
from worker.broker import build_broker
from worker.client import build_message
from worker.settings import Settings

pytestmark = pytest.mark.e2e


def test_the_sixth_delivery_of_a_message_is_quarantined(
    clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str, tmp_path: Path
) -> None:
    env = stack_environment(pg_url, redis_url, redis_namespace, max_deliveries="5")
    with clean_pg.begin() as connection:  # five deliveries that never finished
        connection.execute(text(
            "INSERT INTO message_deliveries (message_id, message_type, broker_message_id, deliveries, first_seen_at,"
            " last_seen_at) VALUES ('poison-1', 'account.onboard', 'b-1', 5, now(), now())"))
    signer = Signer("crm", "crm-1", SECRET.encode())
    broker = build_broker(Settings(redis_url=redis_url, namespace=redis_namespace), "redis")
    now = datetime.now(UTC)
    poison = build_message(signer.envelope("account.onboard", onboarding("poisoned"), now=now, message_id="poison-1"))
    good = build_message(signer.envelope("account.onboard", onboarding("healthy"), now=now))
    broker.enqueue(poison.copy(message_id="b-1"))  # the same broker message, delivered a sixth time
    broker.enqueue(good)

    with running(env, tmp_path / "worker.log", ["worker", "--processes", "1", "--threads", "1"]):
        wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM invoices") == 1, 60, "the healthy onboarding")
        wait_for(lambda: scalar(clean_pg, "SELECT count(*) FROM rejections") == 1, 30, "the quarantine record")
    with clean_pg.connect() as connection:
        code, reason, kept = connection.execute(text("SELECT code, reason, envelope FROM rejections")).one()
        account = connection.execute(text("SELECT account_id FROM invoices")).scalar_one()
    assert (code, account) == ("quarantined", "healthy")
    assert "delivered 6 times" in reason and "max_deliveries = 5" in reason
    assert json.loads(kept)["id"] == "poison-1"  # kept for `billing dlq replay` once the cause is fixed
    assert scalar(clean_pg, "SELECT count(*) FROM accounts WHERE id = 'poisoned'") == 0
