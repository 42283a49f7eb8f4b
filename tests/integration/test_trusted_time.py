"""Time rules are judged against time the worker trusts, and a message's first verdict stands.

The broker's ``message_timestamp`` and a message's ``options`` are written by whoever enqueues:
back-dating them must not revive an expired key, stretch the signature tolerance or lift the age
limit. A message refused once (over a rolling daily cap, say) stays refused when the broker
delivers the same message again later.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from models.tables.balance_line import BalanceLine
from tests.integration.producers import count, line, onboarding, producers, rejections_of
from tests.integration.stub_stack import StubStack
from worker.client import build_message

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
CREATE = "balance_line.create"


@pytest.fixture
def stack(clean_pg: Engine, pg_url: str) -> Iterator[StubStack]:
    stack = StubStack(pg_url, producers(), START)
    try:
        stack.send("account.onboard", onboarding("acme"))
        yield stack
    finally:
        stack.close()


def enqueue_stamped(stack: StubStack, envelope: dict[str, Any], stamp: datetime, **options: Any) -> str:
    """One broker message whose sender chose its timestamp and options."""
    message = build_message(envelope)
    message = message.copy(message_timestamp=int(stamp.timestamp() * 1000), options={**message.options, **options})
    stack.broker.enqueue(message)
    stack.drain()
    return str(envelope["id"])


def test_a_back_dated_message_signed_with_an_expired_key_is_refused(stack: StubStack) -> None:
    # Given a key retired on 2025-12-31 and a message signed with it, dated (envelope and broker) before that
    back = datetime(2025, 12, 30, 12, 0, tzinfo=UTC)
    envelope = stack.envelope(CREATE, line("l-back-dated"), key_id="crm-0", at=back)
    # When it arrives on 2026-01-10
    message_id = enqueue_stamped(stack, envelope, back)
    # Then the key is judged on the day the worker received it: expired, and nothing is written
    assert rejections_of(stack.engine, message_id) == [
        ("unauthorized", "key 'crm-0' of producer 'crm' expired after 2025-12-31")]
    assert count(stack.engine, BalanceLine) == 0


@pytest.mark.parametrize("offset", [timedelta(days=-400), timedelta(days=30)], ids=["400_days_back", "30_days_ahead"])
def test_a_sender_chosen_timestamp_does_not_make_a_stale_message_fresh(stack: StubStack, offset: timedelta) -> None:
    # Given a message stamped (sent_at and broker timestamp) far from now, asking for an age limit of centuries
    stamp = START + offset
    envelope = stack.envelope(CREATE, line("l-stamped"), at=stamp)
    # When it arrives
    message_id = enqueue_stamped(stack, envelope, stamp, max_age=10**14)
    # Then its sent_at is judged against the worker's clock: refused, never applied
    [(code, reason)] = rejections_of(stack.engine, message_id)
    assert code == "unauthorized" and "the tolerance is 300 s" in reason
    assert count(stack.engine, BalanceLine) == 0


def test_a_refusal_stands_when_the_same_message_is_delivered_a_day_later(stack: StubStack) -> None:
    # Given 135.00 of the 150.00 a day crm may grant acme, and a 45.00 line refused over that cap
    for n in range(3):
        stack.send(CREATE, line(f"l-day-{n}", "45.00"))
    envelope = stack.envelope(CREATE, line("l-over", "45.00"))
    message = build_message(envelope)
    stack.broker.enqueue(message)
    stack.drain()
    [(code, _)] = rejections_of(stack.engine, envelope["id"])
    assert code == "limit_exceeded"
    # When the broker delivers the very same message again a day later (the rolling cap is empty by then)
    stack.clock.advance(timedelta(days=1, hours=1))
    stack.broker.enqueue(message)
    stack.drain()
    # Then the first verdict stands: the line is not applied, and the refusal is not recorded twice
    assert count(stack.engine, BalanceLine, BalanceLine.line_id == "l-over") == 0
    assert [code for code, _ in rejections_of(stack.engine, envelope["id"])] == ["limit_exceeded"]
    # And a new message with a new id is judged afresh
    stack.send(CREATE, line("l-over-2", "45.00"))
    assert count(stack.engine, BalanceLine, BalanceLine.line_id == "l-over-2") == 1
