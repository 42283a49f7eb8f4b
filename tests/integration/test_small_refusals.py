"""The smaller ways clumsy input broke things: each is now a refusal with its cause, or a no-op."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Engine, select

from models.tables.account import Account
from models.tables.rejection import Rejection
from tests.integration.producers import count, onboarding, producers, rejections_of
from tests.integration.stub_stack import StubStack
from worker.dead_letters import expiry
from worker.simulate import Simulation

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def stack(clean_pg: Engine, pg_url: str) -> Iterator[StubStack]:
    stack = StubStack(pg_url, producers(), START)
    try:
        yield stack
    finally:
        stack.close()


def test_an_onboarding_resent_with_its_defaults_written_out_is_the_same_onboarding(stack: StubStack) -> None:
    stack.send("account.onboard", onboarding("acme"))
    written_out = onboarding("acme")
    written_out["combine_invoices"] = None
    written_out["subscriptions"][0].update(interval="month", interval_count=1, timing="advance", proration="daily")
    again = stack.send("account.onboard", written_out)
    assert rejections_of(stack.engine, again) == []
    assert count(stack.engine, Account) == 1
    changed = stack.send("account.onboard", {**onboarding("acme"), "bill_day": 20})
    assert rejections_of(stack.engine, changed)[0][0] == "conflict"


def test_a_payload_over_64_kib_is_stored_as_json_that_dlq_show_reads(stack: StubStack,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    envelope = stack.envelope("balance_line.create", {"line_id": "l-1", "free": ["x" * 3000] * 40})
    stack.enqueue(envelope)  # refused: the body has unknown fields
    with stack.engine.connect() as connection:
        rejection_id, payload = connection.execute(select(Rejection.id, Rejection.payload)).one()
    assert len(payload) <= 65536 and json.loads(payload)["truncated"] is True
    from worker.commands import dlq

    monkeypatch.setattr(dlq, "context", lambda: stack.ctx)
    capsys.readouterr()
    assert dlq.dlq_show(rejection_id) == 0
    assert json.loads(capsys.readouterr().out)["payload"]["truncated"] is True


def test_a_message_dropped_by_the_age_limit_says_it_expired_and_how_old_it_was() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name="q", actor_name="a", args=(), kwargs={}, options={},
        message_timestamp=int((now - timedelta(days=9)).timestamp() * 1000))
    reason = expiry(message, now, max_age_ms=7 * 24 * 3600 * 1000)
    assert reason is not None and "expired unprocessed: it was 9.0 days old, above the age limit of 7.0 days" in reason
    assert expiry(message.copy(options={"traceback": "RuntimeError: x"}), now, 1000) is None


def test_simulate_reports_an_unknown_type_and_a_float_as_rejections(tmp_path: Path) -> None:
    scenario = {"until": "2018-12-01", "messages": [
        {"at": "2018-11-30T10:00:00Z", "type": "account.explode", "body": {}},
        {"at": "2018-11-30T10:01:00Z", "type": "balance_line.create",
         "body": {"line_id": "l-1", "account": "a", "kind": "credit", "amount": 5.5, "currency": "USD",
                  "label": "x", "reason": "y", "author": "z"}},
    ]}
    simulation = Simulation(scenario, tmp_path)
    try:
        rejected = simulation.run()["rejected"]
    finally:
        from worker.context import dispose

        dispose(simulation.ctx)
    assert [(row["type"], row["code"]) for row in rejected] == [
        ("account.explode", "invalid"), ("balance_line.create", "invalid")]
    assert "unknown message type" in rejected[0]["reason"] and "JSON number with a fraction" in rejected[1]["reason"]
