"""A reversal above its producer's approval threshold is held for a second identity, not refused.

The real actors run in this process on a manual clock (``StubStack``), on PostgreSQL and on SQLite.
``crm`` may grant and reverse up to 100.00 a line and holds anything above 50.00; its 80.00 line
``l-80`` is approved by ``ops-lead`` first, so the line is active and a reversal of it (80.00 left)
is above the threshold. Accounts bill 30.00 USD on the 15th from 2026-01-10.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from structlog.testing import capture_logs

from jobs.balance_lines import REVERSE, handle_reverse_balance_line
from jobs.context import BrokerDelivery
from jobs.metrics import REGISTRY
from jobs.pipeline import receive
from models.billing.approvals import Decision
from models.billing.balance import remaining_credit
from models.migrations.runner import migrate
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_line_reversal import BalanceLineReversal
from models.tables.invoice import Invoice
from models.tables.invoice_line import InvoiceLine
from models.tables.mapping import open_balance_lines
from models.tables.processed_message import ProcessedMessage
from models.tables.reversal_decision import ReversalDecision
from models.tables.store import transaction
from tests.integration.producers import audit_of, count, line, onboarding, producers, rejections_of, reversal
from tests.integration.stub_stack import StubStack
from worker.commands.audit import approve_or_decline, approve_or_decline_reversal

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
JAN_15 = datetime(2026, 1, 15, 1, 0, tzinfo=UTC)
FEB_15 = datetime(2026, 2, 15, 1, 0, tzinfo=UTC)
CREATE = "balance_line.create"


def _stack(url: str, **crm_limits: Any) -> StubStack:
    stack = StubStack(url, producers(**crm_limits), START)
    stack.send("account.onboard", onboarding("acme"))
    stack.send(CREATE, line("l-80", "80.00"))  # held: above crm's 50.00
    assert approve_or_decline("l-80", decision=Decision.APPROVED, identity="ops-lead", reason="", ctx=stack.ctx) == 0
    return stack


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "postgresql":
        request.getfixturevalue("clean_pg")
        return str(request.getfixturevalue("pg_url"))
    migrate(sqlite_url)
    return sqlite_url


@pytest.fixture
def stack(url: str) -> Iterator[StubStack]:
    stack = _stack(url, per_account_day="1000.00")
    try:
        yield stack
    finally:
        stack.close()


def decide(stack: StubStack, reversal_id: str, decision: str, identity: str, reason: str = "") -> int:
    """``billing approve --reversal`` / ``billing decline --reversal`` on the stack's database."""
    return approve_or_decline_reversal(reversal_id, decision=Decision(decision), identity=identity, reason=reason,
                                       ctx=stack.ctx)


def reversed_entries(engine: Engine) -> list[tuple[str, int, str | None, str | None]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(  # type: ignore[misc]
            select(BalanceLine.line_id, BalanceEntry.amount_minor, BalanceEntry.author, BalanceEntry.reason)
            .join(BalanceLine, BalanceLine.id == BalanceEntry.balance_line_id)
            .where(BalanceEntry.kind == "reversed").order_by(BalanceEntry.id))]


def credit(stack: StubStack, as_of: date) -> int:
    with transaction(stack.ctx.sessions) as session:
        return remaining_credit(open_balance_lines(session, "acme"), as_of)


def credit_lines(engine: Engine) -> list[tuple[str, int]]:
    """(line_id, amount) of every balance line applied to an invoice, in order."""
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(  # type: ignore[misc]
            select(BalanceLine.line_id, InvoiceLine.amount_minor)
            .join(BalanceLine, BalanceLine.id == InvoiceLine.balance_line_id)
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id).order_by(Invoice.id, InvoiceLine.position))]


def key_outcome(engine: Engine, reversal_id: str) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(select(ProcessedMessage.outcome)
                                 .where(ProcessedMessage.key == f"{REVERSE}:{reversal_id}"))


def printed(capsys: pytest.CaptureFixture[str]) -> str:
    """What the command printed last (its own line comes after the log line of the decision)."""
    return capsys.readouterr().out.strip().splitlines()[-1]


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def bill_at(stack: StubStack, instant: datetime) -> None:
    stack.clock.set(instant)
    stack.bill_run()


def test_a_reversal_above_the_threshold_is_held_and_the_line_still_applies(stack: StubStack) -> None:
    held_before = counter("billing_balance_lines_total", producer="crm", kind="credit",
                          outcome="reversal_pending_approval")
    pending_before = counter("billing_messages_total", type=REVERSE, outcome="pending_approval")
    threshold_before = counter("billing_limit_hits_total", producer="crm", kind="credit", limit="approval_above")
    sent = stack.send(REVERSE, reversal("l-80", "r-1"))

    assert rejections_of(stack.engine, sent) == []
    assert key_outcome(stack.engine, "r-1") == "pending_approval"
    assert counter("billing_messages_total", type=REVERSE, outcome="pending_approval") - pending_before == 1
    assert counter("billing_balance_lines_total", producer="crm", kind="credit",
                   outcome="reversal_pending_approval") - held_before == 1
    assert counter("billing_limit_hits_total", producer="crm", kind="credit",
                   limit="approval_above") - threshold_before == 1
    with transaction(stack.ctx.sessions) as session:
        held = session.scalars(select(BalanceLineReversal)).one()
    assert (held.reversal_id, held.account_id, held.amount_minor, held.producer, held.author, held.reason,
            held.message_id) == ("r-1", "acme", 8000, "crm", "agent-9", "granted by mistake", sent)
    assert reversed_entries(stack.engine) == []
    assert credit(stack, date(2026, 1, 10)) == 8000

    bill_at(stack, JAN_15)  # while the reversal waits, the line pays the invoice as before
    assert credit_lines(stack.engine) == [("l-80", -3000)]
    assert credit(stack, date(2026, 1, 15)) == 5000


def test_a_redelivered_held_reversal_is_a_duplicate_and_the_first_verdict_stands(stack: StubStack) -> None:
    envelope = stack.envelope(REVERSE, reversal("l-80", "r-1"))
    delivery = BrokerDelivery(message_id="broker-r-1", enqueued_at=stack.clock.now())
    outcomes = [receive(stack.ctx, REVERSE, envelope, handle_reverse_balance_line, delivery) for _ in range(2)]
    stack.send(REVERSE, reversal("l-80", "r-1"))  # the same reversal in a new envelope: the same key

    assert outcomes == ["pending_approval", "duplicate"]
    assert key_outcome(stack.engine, "r-1") == "pending_approval"
    assert count(stack.engine, BalanceLineReversal) == 1
    assert reversed_entries(stack.engine) == []


@pytest.mark.parametrize("identity", ["ops-lead", " OPS-LEAD ", "\u043eps-lead", "ops\u200b-lead", "\uff4fps-lead"],
                         ids=["author", "case", "cyrillic-o", "zero-width-space", "full-width-o"])
def test_the_author_or_a_look_alike_of_them_cannot_decide(stack: StubStack, identity: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    stack.send(REVERSE, {**reversal("l-80", "r-1"), "author": "ops-lead"})  # an approver asked for it
    capsys.readouterr()
    for decision in ("approved", "declined"):
        assert decide(stack, "r-1", decision, identity) == 2
        assert "asked for reversal r-1; a second identity must decide" in capsys.readouterr().err
    assert count(stack.engine, ReversalDecision) == 0
    assert reversed_entries(stack.engine) == []


def test_a_name_nobody_configured_cannot_decide(stack: StubStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.send(REVERSE, reversal("l-80", "r-1"))
    capsys.readouterr()
    assert decide(stack, "r-1", "approved", "mallory") == 2
    assert "'mallory' is not a configured approver" in capsys.readouterr().err
    assert decide(stack, "r-unknown", "approved", "ops-lead") == 2
    assert "no reversal r-unknown is held for approval" in capsys.readouterr().err
    assert count(stack.engine, ReversalDecision) == 0
    assert reversed_entries(stack.engine) == []


def test_an_approval_reverses_what_is_left_at_most_what_was_asked(stack: StubStack,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    stack.send(REVERSE, reversal("l-80", "r-1"))
    bill_at(stack, JAN_15)  # 30.00 of the 80.00 pays the invoice meanwhile
    approved = counter("billing_balance_lines_total", producer="crm", kind="credit", outcome="reversal_approved")
    capsys.readouterr()
    with capture_logs() as logs:
        assert decide(stack, "r-1", "approved", "OPS-LEAD-2", reason="customer asked") == 0

    assert printed(capsys) == (
        "reversal r-1 of balance line l-80 approved by ops-lead-2: 50.00 USD reversed, all that was left of the "
        "line (it asked for 80.00 USD)")
    assert reversed_entries(stack.engine) == [("l-80", 5000, "agent-9", "granted by mistake")]
    with transaction(stack.ctx.sessions) as session:
        decided = session.scalars(select(ReversalDecision)).one()
    assert (decided.reversal_id, decided.decision, decided.identity, decided.reason, decided.applied_minor) == (
        "r-1", "approved", "ops-lead-2", "customer asked", 5000)
    assert counter("billing_balance_lines_total", producer="crm", kind="credit",
                   outcome="reversal_approved") - approved == 1
    assert [entry for entry in logs if entry["event"] == "balance_line_reversal_decided"] == [{
        "event": "balance_line_reversal_decided", "log_level": "info", "reversal_id": "r-1", "line_id": "l-80",
        "decision": "approved", "account_id": "acme", "asked_minor": 8000, "applied_minor": 5000,
    }]
    assert credit(stack, date(2026, 1, 15)) == 0
    bill_at(stack, FEB_15)
    assert credit_lines(stack.engine) == [("l-80", -3000)]  # nothing more of it applies


def test_an_approval_before_any_use_reverses_all_it_asked(stack: StubStack,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    stack.send(REVERSE, reversal("l-80", "r-1"))
    capsys.readouterr()
    assert decide(stack, "r-1", "approved", "ops-lead") == 0
    assert printed(capsys) == "reversal r-1 of balance line l-80 approved by ops-lead: 80.00 USD reversed"
    assert reversed_entries(stack.engine) == [("l-80", 8000, "agent-9", "granted by mistake")]
    assert credit(stack, date(2026, 1, 10)) == 0


def test_an_approval_with_nothing_left_is_recorded_and_applies_nothing(stack: StubStack,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    stack.send(REVERSE, reversal("l-80", "r-1"))
    stack.send(REVERSE, reversal("l-80", "r-2"))  # a second reversal of the same 80.00, held too
    assert decide(stack, "r-1", "approved", "ops-lead") == 0
    capsys.readouterr()
    assert decide(stack, "r-2", "approved", "ops-lead") == 0

    assert printed(capsys) == (
        "reversal r-2 of balance line l-80 approved by ops-lead: nothing is left of the line, nothing reversed "
        "(it asked for 80.00 USD)")
    assert reversed_entries(stack.engine) == [("l-80", 8000, "agent-9", "granted by mistake")]
    with stack.engine.connect() as connection:
        applied = dict(connection.execute(select(ReversalDecision.reversal_id, ReversalDecision.applied_minor)).all())
    assert applied == {"r-1": 8000, "r-2": 0}


def test_a_decline_applies_nothing_and_the_first_decision_is_final(stack: StubStack,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    stack.send(REVERSE, reversal("l-80", "r-1"))
    declined = counter("billing_balance_lines_total", producer="crm", kind="credit", outcome="reversal_declined")
    capsys.readouterr()
    assert decide(stack, "r-1", "declined", "ops-lead", reason="the credit was right") == 0
    assert printed(capsys) == (
        "reversal r-1 of balance line l-80 declined by ops-lead: nothing reversed (it asked for 80.00 USD)")
    for decision, identity in (("approved", "ops-lead-2"), ("declined", "someone-else")):
        assert decide(stack, "r-1", decision, identity) == 2
        assert "reversal r-1 was already declined" in capsys.readouterr().err

    assert counter("billing_balance_lines_total", producer="crm", kind="credit",
                   outcome="reversal_declined") - declined == 1
    assert count(stack.engine, ReversalDecision) == 1
    assert reversed_entries(stack.engine) == []
    bill_at(stack, JAN_15)
    assert credit_lines(stack.engine) == [("l-80", -3000)]
    assert credit(stack, date(2026, 1, 15)) == 5000


def test_an_approval_is_final_too(stack: StubStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.send(REVERSE, reversal("l-80", "r-1"))
    assert decide(stack, "r-1", "approved", "ops-lead") == 0
    capsys.readouterr()
    assert decide(stack, "r-1", "approved", "ops-lead-2") == 2
    assert "reversal r-1 was already approved" in capsys.readouterr().err
    assert count(stack.engine, ReversalDecision) == 1
    assert reversed_entries(stack.engine) == [("l-80", 8000, "agent-9", "granted by mistake")]


def test_the_audit_trail_shows_the_held_reversal_and_its_decision(stack: StubStack,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    held = stack.send(REVERSE, reversal("l-80", "r-1"))
    bill_at(stack, JAN_15)
    stack.clock.advance(timedelta(hours=1))
    assert decide(stack, "r-1", "approved", "ops-lead-2", reason="customer asked") == 0
    rows = [row for row in audit_of(stack, "acme", capsys) if row["line_id"] == "l-80"]
    assert [(row["event"], row["amount_minor"], row["author"], row["reason"], row["reversal_id"]) for row in rows] == [
        ("pending_approval", "8000", "agent-7", "service outage", ""),
        ("approved", "", "ops-lead", "approved", ""),
        ("reversal_pending_approval", "-8000", "agent-9", "granted by mistake", "r-1"),
        ("applied", "-3000", "", "applied to invoice INV-2026-000002", ""),
        ("reversal_approved", "", "ops-lead-2", "customer asked", "r-1"),
        ("reversed", "-5000", "agent-9", "granted by mistake", "r-1"),
    ]
    assert {row["message_id"] for row in rows if row["reversal_id"]} == {held}
    assert {row["producer"] for row in rows if row["reversal_id"]} == {"crm"}


def test_the_audit_trail_names_a_reversal_applied_at_once(stack: StubStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.send(CREATE, line("l-10", "10.00"))
    stack.send(REVERSE, reversal("l-10", "r-small"))  # below the threshold: reversed at once
    [row] = [row for row in audit_of(stack, "acme", capsys) if row["line_id"] == "l-10" and row["event"] != "accepted"]
    assert (row["event"], row["amount_minor"], row["reversal_id"]) == ("reversed", "-1000", "r-small")


def test_held_reversals_count_towards_the_day_cap_once(url: str) -> None:
    """With 200.00 a day for acme, l-80 (80.00) and the held r-1 (80.00) leave room for no second
    80.00 reversal (240.00), held or not. Once r-1 is approved its entry is not counted a second
    time: a 20.00 line still fits (180.00)."""
    stack = _stack(url, per_account_day="200.00")
    try:
        stack.send(REVERSE, reversal("l-80", "r-1"))
        over = stack.send(REVERSE, reversal("l-80", "r-2"))
        [(code, reason)] = rejections_of(stack.engine, over)
        assert code == "limit_exceeded" and "to 240.00, above its per_account_day limit of 200.00 USD" in reason
        assert count(stack.engine, BalanceLineReversal) == 1
        assert decide(stack, "r-1", "approved", "ops-lead") == 0
        fits = stack.send(CREATE, line("l-20", "20.00"))
        assert rejections_of(stack.engine, fits) == []
    finally:
        stack.close()


@pytest.fixture
def pg_stack(clean_pg: Engine, pg_url: str) -> Iterator[StubStack]:
    stack = _stack(pg_url, per_account_day="1000.00")
    try:
        yield stack
    finally:
        stack.close()


def test_billing_approve_and_decline_reversal_commands(pg_stack: StubStack, tmp_path: Path) -> None:
    """The real ``billing`` command, in its own process, on the stack's PostgreSQL database."""
    stack = pg_stack
    stack.send(REVERSE, reversal("l-80", "r-1"))
    stack.send(REVERSE, reversal("l-80", "r-2"))

    refused = stack.cli("approve", "--reversal", "r-1", "--as", "agent-9", cwd=tmp_path)
    assert refused.returncode == 2
    assert "'agent-9' is not a configured approver" in refused.stderr
    approved = stack.cli("approve", "--reversal", "r-1", "--as", "ops-lead", "--reason", "customer asked",
                         cwd=tmp_path)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == "reversal r-1 of balance line l-80 approved by ops-lead: 80.00 USD reversed"
    declined = stack.cli("decline", "--reversal", "r-2", "--as", "ops-lead-2", cwd=tmp_path)
    assert declined.returncode == 0, declined.stderr
    assert "reversal r-2 of balance line l-80 declined by ops-lead-2: nothing reversed" in declined.stdout
    again = stack.cli("decline", "--reversal", "r-1", "--as", "someone-else", cwd=tmp_path)
    assert again.returncode == 2 and "reversal r-1 was already approved" in again.stderr
    both = stack.cli("approve", "l-80", "--reversal", "r-1", "--as", "ops-lead", cwd=tmp_path)
    assert both.returncode == 2 and "not allowed with argument LINE" in both.stderr

    assert reversed_entries(stack.engine) == [("l-80", 8000, "agent-9", "granted by mistake")]
    events = [(row["event"], row["author"], row["reversal_id"]) for row in stack.audit_csv("acme", cwd=tmp_path)
              if row["event"].startswith("reversal_")]
    assert events == [
        ("reversal_pending_approval", "agent-9", "r-1"),
        ("reversal_pending_approval", "agent-9", "r-2"),
        ("reversal_approved", "ops-lead", "r-1"),
        ("reversal_declined", "ops-lead-2", "r-2"),
    ]
