"""Small unsigned messages built to break the recorders: they are refused, and bill runs go on.

A 1.5 KB body nested 600 levels deep once made rejection recording raise ``RecursionError``, so the
message was retried, dead-lettered, and then made the dead-letter sweep raise on every pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dramatiq
import pytest
import redis
from sqlalchemy import Engine, select

from jobs.context import BrokerDelivery
from jobs.outcomes import Outcome
from jobs.pipeline import receive
from jobs.rejections import payload_text
from jobs.routes import ROUTES
from jobs.signer import Signer
from models.tables.rejection import Rejection
from tests.integration.producers import OPS_SECRET, onboarding, producers
from tests.integration.stub_stack import StubStack
from worker import dead_letters, scheduler
from worker.broker import build_broker
from worker.settings import Settings

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
CREATE = "balance_line.create"


def deep_envelope(levels: int = 600) -> dict[str, Any]:
    """An unsigned envelope whose body nests ``levels`` lists: about 1.5 KB of JSON."""
    nested: Any = "x"
    for _ in range(levels):
        nested = [nested]
    return {"type": CREATE, "id": "deep-1", "producer": "crm", "body": {"line_id": nested}}


@pytest.fixture
def stack(clean_pg: Engine, pg_url: str) -> Iterator[StubStack]:
    stack = StubStack(pg_url, producers(), START)
    try:
        yield stack
    finally:
        stack.close()


def rejections(engine: Engine) -> list[tuple[str | None, str, str]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(  # type: ignore[misc]
            select(Rejection.message_id, Rejection.code, Rejection.reason).order_by(Rejection.id))]


def test_a_deeply_nested_envelope_is_refused_on_its_first_delivery(stack: StubStack) -> None:
    raw = deep_envelope()
    assert len(json.dumps(raw)) < 2000
    # When the pipeline receives it (as a direct call would hand it over, past the decoder)
    outcome = receive(stack.ctx, CREATE, raw, lambda *_: Outcome.PROCESSED, BrokerDelivery("b-1", START))
    # Then it is a rejection with its cause, not an exception the broker would retry
    assert outcome is Outcome.REJECTED
    assert rejections(stack.engine) == [
        ("deep-1", "invalid", "envelope: is nested more than 20 levels deep; the limit is 20")]


def test_any_payload_is_stored_as_valid_json() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = {"a": deep}
    for payload in (deep, {"label_free": "y" * 200_000}, object(), b"\xff" * 10):
        json.loads(payload_text(payload))  # never raises, and always reads back


def test_a_poisoned_dead_letter_stops_neither_the_sweep_nor_the_tick(
    stack: StubStack, pg_url: str, redis_url: str, redis_namespace: str,
) -> None:
    # Given, in the Redis dead-letter set, a message carrying the 600-deep envelope beside a plain one
    settings = Settings(database_url=pg_url, redis_url=redis_url, namespace=redis_namespace, metrics_port=0)
    client = redis.Redis.from_url(redis_url)
    route = ROUTES[CREATE]
    dead_key = f"{redis_namespace}:dramatiq:{dramatiq.common.xq_name(route.queue_name)}.msgs"
    for number, envelope in enumerate([deep_envelope(), {**onboarding("acme"), "id": "plain-1"}]):
        message = dramatiq.Message(queue_name=route.queue_name, actor_name=route.actor_name, args=(envelope,),
                                   kwargs={}, options={"retries": 5, "traceback": "RuntimeError: boom"},
                                   message_id=f"dead-{number}")
        client.hset(dead_key, f"dead-{number}", json.dumps(message.asdict()))
    # When the scheduler sweeps, twice, and then ticks
    broker = build_broker(settings)
    try:
        scheduler.sweep(stack.ctx, settings)
        scheduler.sweep(stack.ctx, settings)
        scheduler._guarded("tick", lambda: scheduler.tick(broker, Signer("ops", "ops-1", OPS_SECRET.encode())))
        # Then both letters are recorded once and taken out of Redis, and the bill-run trigger went out
        codes = [code for _, code, _ in rejections(stack.engine)]
        assert codes == ["retries_exhausted", "retries_exhausted"]
        assert client.hlen(dead_key) == 0
        trigger = ROUTES["bill_run.trigger"]
        assert client.hlen(f"{redis_namespace}:dramatiq:{trigger.queue_name}.msgs") == 1
    finally:
        broker.close()
        client.close()


def test_a_letter_that_cannot_be_recorded_is_left_for_later_without_stopping_the_others(
    stack: StubStack, redis_url: str, redis_namespace: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = redis.Redis.from_url(redis_url)
    route = ROUTES[CREATE]
    dead_key = f"{redis_namespace}:dramatiq:{dramatiq.common.xq_name(route.queue_name)}.msgs"
    for number in range(2):
        message = dramatiq.Message(queue_name=route.queue_name, actor_name=route.actor_name,
                                   args=({"id": f"e-{number}"},), kwargs={}, options={}, message_id=f"dead-{number}")
        client.hset(dead_key, f"dead-{number}", json.dumps(message.asdict()))
    real = dead_letters.record

    def poisoned(ctx: Any, message: dramatiq.Message[Any], *args: Any, **kwargs: Any) -> bool:
        if message.message_id == "dead-0":
            raise RecursionError("maximum recursion depth exceeded")
        return real(ctx, message, *args, **kwargs)

    monkeypatch.setattr(dead_letters, "record", poisoned)
    try:
        recorded = dead_letters.sweep(stack.ctx, client, f"{redis_namespace}:dramatiq", (route.queue_name,), START)
        assert recorded == 1
        assert client.hkeys(dead_key) == [b"dead-0"]  # kept in Redis for the next pass
    finally:
        client.close()
