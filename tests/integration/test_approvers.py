"""Only configured approvers decide on a held line, and a look-alike of its author is its author."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from models.billing.approvals import Decision
from models.tables.balance_line_decision import BalanceLineDecision
from tests.integration.producers import count, line, onboarding, producers
from tests.integration.stub_stack import StubStack
from worker.commands.audit import approve_or_decline

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def stack(clean_pg: Engine, pg_url: str) -> Iterator[StubStack]:
    stack = StubStack(pg_url, producers(), START)
    try:
        stack.send("account.onboard", onboarding("acme"))
        stack.send("balance_line.create", line("l-held", "60.00"))  # above crm's approval threshold
        yield stack
    finally:
        stack.close()


@pytest.mark.parametrize("identity", ["mallory", "\u0430gent-7", "agent\u200b-7", "\uff41gent-7"])
def test_an_unknown_or_look_alike_identity_cannot_approve(stack: StubStack, identity: str) -> None:
    assert approve_or_decline("l-held", decision=Decision.APPROVED, identity=identity, reason="", ctx=stack.ctx) == 2
    assert count(stack.engine, BalanceLineDecision) == 0


def test_a_configured_approver_approves_under_its_configured_name(stack: StubStack) -> None:
    assert approve_or_decline("l-held", decision=Decision.APPROVED, identity="OPS-LEAD", reason="", ctx=stack.ctx) == 0
    assert count(stack.engine, BalanceLineDecision, BalanceLineDecision.identity == "ops-lead") == 1
