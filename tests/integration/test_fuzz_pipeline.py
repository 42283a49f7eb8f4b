"""Random bytes, random JSON shapes and random field values through the decoder and the pipeline.

A StubBroker stack on SQLite with the real actors: every message must end as exactly one thing
(processed, duplicate, parked, pending approval, or a rejection with a code and a reason), never
as a transient failure, within bounded time, and the worker must keep consuming afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from jobs.routes import ROUTES
from models.migrations.runner import migrate
from models.tables.parked_message import ParkedMessage
from models.tables.processed_message import ProcessedMessage
from models.tables.rejection import Rejection
from tests.integration.producers import line, onboarding, producers
from tests.integration.stub_stack import StubStack

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
CREATE = "balance_line.create"
FUZZ = settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=30)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
LINE_FIELDS = ["line_id", "account", "kind", "amount", "percent", "currency", "label", "reason", "author",
               "effective_date", "expires_on", "extra"]
field_values = json_values | st.sampled_from(["", "0", "-1", "1e9", "100.001", "2026-01-05", "9999-12-31",
                                              "0001-01-01", "acme", "credit", "discount", "USD", "EUR", "x" * 300])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubStack]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'fuzz.sqlite3'}"
    migrate(url)
    stack = StubStack(url, producers(), START)
    stack.send("account.onboard", onboarding("acme"))
    try:
        yield stack
    finally:
        stack.close()


def rejection_count(stack: StubStack) -> int:
    with stack.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Rejection)).scalar_one())


def ended_once(stack: StubStack, message_id: str) -> str:
    """What became of a signed message: its one rejection, or a processed, parked or held trace."""
    with stack.engine.connect() as connection:
        rejected = connection.execute(select(Rejection.code, Rejection.reason)
                                      .where(Rejection.message_id == message_id)).all()
        kept = connection.execute(select(func.count()).select_from(ProcessedMessage)
                                  .where(ProcessedMessage.message_id == message_id)).scalar_one()
        parked = connection.execute(select(func.count()).select_from(ParkedMessage)
                                    .where(ParkedMessage.message_id == message_id)).scalar_one()
    if rejected:
        [(code, reason)] = rejected
        assert code and reason and code != "retries_exhausted", (code, reason)
        return str(code)
    assert kept or parked, f"message {message_id} left no trace"
    return "parked" if parked else "processed"


def still_consuming(stack: StubStack) -> None:
    assert stack.broker.dead_letters == []
    probe = stack.envelope("bill_run.trigger", {}, producer="ops")
    stack.enqueue(probe)
    assert ended_once(stack, probe["id"]) == "processed"


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_are_quarantined(stack: StubStack, raw: bytes) -> None:
    before = rejection_count(stack)
    started = time.perf_counter()
    stack.broker.queues[ROUTES[CREATE].queue_name].put(raw)
    stack.drain()
    assert time.perf_counter() - started < 10
    assert rejection_count(stack) == before + 1
    assert stack.broker.dead_letters == []


@FUZZ
@given(json_values)
def test_random_json_shapes_as_the_envelope_are_rejected(stack: StubStack, shape: Any) -> None:
    before = rejection_count(stack)
    route = ROUTES[CREATE]
    started = time.perf_counter()
    stack.broker.enqueue(dramatiq.Message(queue_name=route.queue_name, actor_name=route.actor_name, args=(shape,),
                                          kwargs={}, options={}))
    stack.drain()
    assert time.perf_counter() - started < 10
    assert rejection_count(stack) == before + 1
    assert stack.broker.dead_letters == []


@FUZZ
@given(st.dictionaries(st.sampled_from(LINE_FIELDS), field_values, max_size=4), st.booleans())
def test_random_field_values_in_signed_lines_end_as_exactly_one_outcome(
    stack: StubStack, changes: dict[str, Any], embedded: bool,
) -> None:
    body: dict[str, Any] = {**line(f"l-{time.monotonic_ns()}"), **changes}
    if embedded:
        body.pop("account", None)
        message_type, sent = "account.onboard", onboarding(f"a-{time.monotonic_ns()}", lines=[body])
    else:
        message_type, sent = CREATE, body
    started = time.perf_counter()
    try:
        envelope = stack.envelope(message_type, sent)
    except ValueError:  # a float in the body: the project's client refuses to sign it
        return
    stack.enqueue(envelope)
    assert time.perf_counter() - started < 10
    ended_once(stack, envelope["id"])


def test_the_worker_still_consumes_after_the_fuzz(stack: StubStack) -> None:
    still_consuming(stack)
