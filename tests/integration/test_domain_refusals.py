"""Domain errors are rejections with their cause on the first delivery, never retried, and caps cap.

The stack runs with ``max_retries=0``: a message mistaken for a transient fault would end as
``retries_exhausted``, so each test reads the code of the one rejection its message got.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from tests.integration.producers import count, line, onboarding, producers, rejections_of, reversal
from tests.integration.stub_stack import StubStack

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
CREATE, REVERSE, ONBOARD = "balance_line.create", "balance_line.reverse", "account.onboard"
ALL_KINDS = ["credit", "gift", "referral", "discount", "adjustment"]


def more_producers() -> dict[str, Any]:
    found = producers()
    found["bulk"] = {"keys": [{"id": "bulk-1", "secret": "bulk-secret-0123456789"}], "kinds": ALL_KINDS,
                     "types": [ONBOARD, CREATE, REVERSE]}
    found["desk"] = {"keys": [{"id": "desk-1", "secret": "desk-secret-0123456789"}], "kinds": ["credit"],
                     "types": [CREATE, REVERSE]}
    return found


@pytest.fixture
def stack(clean_pg: Engine, pg_url: str) -> Iterator[StubStack]:
    stack = StubStack(pg_url, more_producers(), START)
    try:
        yield stack
    finally:
        stack.close()


def only_rejection(stack: StubStack, message_id: str) -> tuple[str, str]:
    [found] = rejections_of(stack.engine, message_id)
    return found


@pytest.mark.parametrize("start", ["0001-01-01", "9999-12-31", "1899-12-31", "3000-01-01"])
def test_a_start_date_outside_the_calendar_is_invalid(stack: StubStack, start: str) -> None:
    code, reason = only_rejection(stack, stack.send(ONBOARD, onboarding("acme", start=start)))
    assert code == "invalid" and reason.startswith("start_date:") and "1900-01-01 to 2999-12-31" in reason


def test_a_weekly_plan_at_the_calendar_edge_is_invalid(stack: StubStack) -> None:
    body = onboarding("acme", start="9999-12-27")
    body["subscriptions"][0].update(interval="week")
    body.pop("bill_day")
    code, reason = only_rejection(stack, stack.send(ONBOARD, body))
    assert code == "invalid" and reason.startswith("start_date:")


def test_a_credit_already_expired_when_it_arrives_is_invalid(stack: StubStack) -> None:
    stack.send(ONBOARD, onboarding("acme"))
    sent = stack.send(CREATE, line("l-expired", expires_on="2026-01-05"))
    assert only_rejection(stack, sent) == (
        "invalid", "expires_on: 2026-01-05 is before the day it was received 2026-01-10: the line could never apply")
    embedded = stack.send(ONBOARD, onboarding("acme-2", lines=[line("l-e", account=None, expires_on="2026-01-09")]))
    code, reason = only_rejection(stack, embedded)
    assert code == "invalid" and reason.startswith("balance_lines.0 (l-e).expires_on: 2026-01-09 is before")


def test_a_line_id_shared_by_an_embedded_line_and_a_create_is_one_key(stack: StubStack) -> None:
    stack.send(ONBOARD, onboarding("acme", lines=[line("shared-1", account=None)]))
    same = stack.send(CREATE, line("shared-1"))  # the same line sent alone: a duplicate
    other = stack.send(CREATE, line("shared-1", "20.00"))
    assert rejections_of(stack.engine, same) == []
    code, reason = only_rejection(stack, other)
    assert code == "conflict" and "balance line shared-1 was already processed" in reason
    assert count(stack.engine, BalanceLine) == 1


def test_an_embedded_line_in_another_currency_is_a_currency_mismatch(stack: StubStack) -> None:
    sent = stack.send(ONBOARD, onboarding("acme", lines=[line("l-eur", account=None, currency="EUR")]))
    assert only_rejection(stack, sent)[0] == "currency_mismatch"


def test_an_amount_that_would_overflow_the_account_is_invalid_and_billing_goes_on(stack: StubStack) -> None:
    stack.send(ONBOARD, onboarding("acme"), producer="bulk")
    half = "46116860184273879.03"  # half of the 64-bit limit, in cents
    first = stack.send(CREATE, line("l-half", half, kind="adjustment"), producer="bulk")
    second = stack.send(CREATE, line("l-half-2", half, kind="adjustment"), producer="bulk")
    assert rejections_of(stack.engine, first) == []
    code, reason = only_rejection(stack, second)
    assert code == "invalid" and "64-bit limit" in reason
    huge = stack.send(ONBOARD, {**onboarding("big"), "subscriptions": [
        {"plan": "p", "amount": "92233720368547758.07"}]}, producer="bulk")
    assert only_rejection(stack, huge)[0] == "invalid"


def test_a_percent_discount_has_its_own_ceiling_and_threshold(stack: StubStack) -> None:
    stack.send(ONBOARD, onboarding("acme"))
    over = stack.send(CREATE, line("p-25", None, kind="discount", percent="25"))
    assert only_rejection(stack, over) == ("limit_exceeded", "25% is above producer crm's max_percent of 20%")
    stack.send(CREATE, line("p-16", None, kind="discount", percent="16"))  # above 15%: held
    stacked = stack.send(CREATE, line("p-5", None, kind="discount", percent="5"))
    code, reason = only_rejection(stack, stacked)
    assert code == "limit_exceeded" and "to 21%" in reason
    assert count(stack.engine, BalanceLine, BalanceLine.line_id == "p-16", BalanceLine.requires_approval.is_(True)) == 1


def test_a_producer_reverses_only_its_own_lines_within_its_caps(stack: StubStack) -> None:
    stack.send(ONBOARD, onboarding("acme"))
    stack.send(CREATE, line("l-crm", "10.00"))
    foreign = stack.send(REVERSE, reversal("l-crm", "r-foreign"), producer="desk")
    code, reason = only_rejection(stack, foreign)
    assert code == "forbidden" and "producer crm created it" in reason
    for n in range(3):  # 135.00 of crm's 150.00 a day for acme
        stack.send(CREATE, line(f"l-day-{n}", "45.00"))
    over_day = stack.send(REVERSE, reversal("l-day-0", "r-day-0"))
    code, reason = only_rejection(stack, over_day)
    assert code == "limit_exceeded" and "per_account_day" in reason
    assert count(stack.engine, BalanceEntry) == 0
