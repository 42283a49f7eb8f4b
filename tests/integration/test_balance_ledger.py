"""Approval, decline, reversal, embedded lines and the audit's reconciliation, on PostgreSQL.

The real actors run in this process on a manual clock (``StubStack``); bill runs are real
``bill_run.trigger`` messages. Amounts are exact minor units. Accounts bill 30.00 USD on the 15th
from 2026-01-10 (the onboarding invoice is the stub 10-14 Jan: 5/31 of 30.00 = 4.84).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from jobs.metrics import REGISTRY
from models.billing.approvals import Decision
from models.billing.balance import remaining_credit
from models.tables.account import Account
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.invoice import Invoice
from models.tables.invoice_line import InvoiceLine
from models.tables.mapping import open_balance_lines
from models.tables.store import transaction
from tests.integration.producers import (
    audit_of,
    count,
    line,
    onboarding,
    producers,
    rejections_of,
    reversal,
)
from tests.integration.stub_stack import StubStack
from worker.commands.audit import approve_or_decline, approve_or_decline_reversal

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
JAN_15 = datetime(2026, 1, 15, 1, 0, tzinfo=UTC)
FEB_15 = datetime(2026, 2, 15, 1, 0, tzinfo=UTC)
CREATE = "balance_line.create"
REVERSE = "balance_line.reverse"
CREDIT_KINDS = {"credit", "gift", "referral"}


@pytest.fixture
def stack(clean_pg: Engine, pg_url: str) -> Iterator[StubStack]:
    stack = StubStack(pg_url, producers(per_account_day="1000.00"), START)
    try:
        yield stack
    finally:
        stack.close()


def invoices(engine: Engine, account: str) -> list[tuple[date, int, list[tuple[str, str | None, int]]]]:
    """(issue date, total, [(kind, balance line id, amount)]) of each invoice, in issue order."""
    with engine.connect() as connection:
        found = connection.execute(select(Invoice.id, Invoice.issue_date, Invoice.total_minor)
                                   .where(Invoice.account_id == account).order_by(Invoice.id)).all()
        result = []
        for invoice_id, issued, total in found:
            lines = connection.execute(
                select(InvoiceLine.kind, BalanceLine.line_id, InvoiceLine.amount_minor)
                .outerjoin(BalanceLine, BalanceLine.id == InvoiceLine.balance_line_id)
                .where(InvoiceLine.invoice_id == invoice_id).order_by(InvoiceLine.position)
            ).all()
            result.append((issued, total, [tuple(row) for row in lines]))
    return result  # type: ignore[return-value]


def credit(stack: StubStack, account: str, as_of: date) -> int:
    """The credit the invoicing code would apply: ``remaining_credit`` over ``open_balance_lines``."""
    with transaction(stack.ctx.sessions) as session:
        return remaining_credit(open_balance_lines(session, account), as_of)


def bill_at(stack: StubStack, instant: datetime) -> None:
    stack.clock.set(instant)
    stack.bill_run()


def decide(stack: StubStack, line_id: str, *, decision: str, identity: str, reason: str) -> int:
    """``billing approve`` / ``decline`` on the stack's database."""
    return approve_or_decline(line_id, decision=Decision(decision), identity=identity, reason=reason, ctx=stack.ctx)


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_approved_line_applies_to_the_next_invoice(stack: StubStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.send("account.onboard", onboarding("acme"))
    stack.clock.advance(timedelta(minutes=10))
    stack.send(CREATE, line("l-held", "80.00"))
    bill_at(stack, datetime(2026, 1, 11, 9, 0, tzinfo=UTC))
    assert credit(stack, "acme", date(2026, 1, 11)) == 0  # held: not credit yet

    assert decide(stack, "l-held", decision="approved", identity=" Agent-7 ", reason="") == 2  # its own author
    assert decide(stack, "l-held", decision="approved", identity="ops-lead", reason="checked the outage ticket") == 0
    assert decide(stack, "l-held", decision="declined", identity="someone-else", reason="") == 2  # decided once
    bill_at(stack, JAN_15)

    assert invoices(stack.engine, "acme") == [
        (date(2026, 1, 10), 484, [("recurring", None, 484)]),
        (date(2026, 1, 15), 0, [("recurring", None, 3000), ("credit", "l-held", -3000)]),
    ]
    assert credit(stack, "acme", date(2026, 1, 15)) == 5000
    events = [(row["event"], row["author"], row["reason"]) for row in audit_of(stack, "acme", capsys)]
    assert events == [
        ("pending_approval", "agent-7", "service outage"),
        ("approved", "ops-lead", "checked the outage ticket"),
        ("applied", "", "applied to invoice INV-2026-000002"),
    ]


def test_a_declined_line_never_applies_and_a_pending_one_waits(stack: StubStack) -> None:
    for account in ("beta", "gamma"):
        stack.send("account.onboard", onboarding(account))
        stack.send(CREATE, line(f"{account}-held", "80.00", account=account))
    assert decide(stack, "beta-held", decision="declined", identity="ops-lead", reason="no outage that day") == 0
    assert decide(stack, "beta-held", decision="approved", identity="ops-lead-2", reason="") == 2

    for instant in (JAN_15, FEB_15):
        bill_at(stack, instant)

    for account in ("beta", "gamma"):
        assert [(issued, total, [kind for kind, _, _ in lines]) for issued, total, lines in
                invoices(stack.engine, account)] == [
            (date(2026, 1, 10), 484, ["recurring"]),
            (date(2026, 1, 15), 3000, ["recurring"]),
            (date(2026, 2, 15), 3000, ["recurring"]),
        ]
        assert credit(stack, account, date(2026, 2, 15)) == 0


def test_a_reversal_restores_the_credit_exactly(stack: StubStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.send("account.onboard", onboarding("acme"))
    before = credit(stack, "acme", date(2026, 1, 10))
    stack.send(CREATE, line("l-40", "40.00"))
    stack.send(CREATE, line("l-unused", "12.34"))
    assert credit(stack, "acme", date(2026, 1, 10)) == before + 4000 + 1234
    bill_at(stack, JAN_15)  # uses 30.00 of l-40
    assert credit(stack, "acme", date(2026, 1, 15)) == before + 1000 + 1234

    reversed_id = stack.send(REVERSE, reversal("l-40", "r-1"))
    stack.send(REVERSE, reversal("l-40", "r-1"))  # the same reversal again: a no-op
    stack.send(REVERSE, reversal("l-unused", "r-2"))

    assert credit(stack, "acme", date(2026, 1, 15)) == before
    with stack.engine.connect() as connection:
        entries = connection.execute(
            select(BalanceLine.line_id, BalanceEntry.kind, BalanceEntry.amount_minor, BalanceEntry.author)
            .join(BalanceLine, BalanceLine.id == BalanceEntry.balance_line_id).order_by(BalanceEntry.id)
        ).all()
    assert [tuple(row) for row in entries] == [
        ("l-40", "applied", 3000, None),
        ("l-40", "reversed", 1000, "agent-9"),
        ("l-unused", "reversed", 1234, "agent-9"),
    ]
    bill_at(stack, FEB_15)
    assert invoices(stack.engine, "acme")[-1] == (date(2026, 2, 15), 3000, [("recurring", None, 3000)])
    [row] = [row for row in audit_of(stack, "acme", capsys) if row["message_id"] == reversed_id]
    assert (row["event"], row["amount_minor"], row["producer"], row["author"], row["reason"]) == (
        "reversed", "-1000", "crm", "agent-9", "granted by mistake"
    )


def test_a_reversal_cancels_a_pending_charge_and_an_unused_discount(stack: StubStack) -> None:
    stack.send("account.onboard", onboarding("acme"))
    stack.send(CREATE, line("l-charge", "5.00", kind="adjustment"))
    stack.send(CREATE, line("l-discount", None, kind="discount", percent="10"))
    stack.send(REVERSE, reversal("l-charge", "r-charge"))
    stack.send(REVERSE, reversal("l-discount", "r-discount"))
    bill_at(stack, JAN_15)
    assert invoices(stack.engine, "acme")[-1] == (date(2026, 1, 15), 3000, [("recurring", None, 3000)])


def test_a_reversal_needs_the_kind_and_the_line_on_that_account(stack: StubStack) -> None:
    stack.send("account.onboard", onboarding("acme"))
    stack.send("account.onboard", onboarding("acme-2"))
    stack.send(CREATE, line("l-credit", "10.00"))
    kind = stack.send(REVERSE, reversal("l-credit", "r-kind"), producer="refunds")
    elsewhere = stack.send(REVERSE, reversal("l-credit", "r-elsewhere", account="acme-2"))
    assert rejections_of(stack.engine, kind) == [
        ("forbidden", "producer refunds may not reverse credit lines (its kinds: gift)")
    ]
    assert rejections_of(stack.engine, elsewhere) == [
        ("conflict", "balance line l-credit does not exist on account acme-2")
    ]
    assert count(stack.engine, BalanceEntry) == 0


def _active_credit(rows: list[dict[str, str]], as_of: date) -> int:
    """Credit available computed from ``billing audit --csv`` rows alone (see ``worker.audit``)."""
    events: dict[str, set[str]] = {}
    lines: dict[str, dict[str, str]] = {}
    for row in rows:
        if row["line_id"] and not row["event"].startswith("rejected"):
            events.setdefault(row["line_id"], set()).add(row["event"])
            if row["event"] in {"accepted", "pending_approval"}:
                lines[row["line_id"]] = row

    def counts(line_id: str) -> bool:
        row, seen = lines[line_id], events[line_id]
        active = "accepted" in seen or {"pending_approval", "approved"} <= seen
        is_credit = row["kind"] in CREDIT_KINDS or (row["kind"] == "adjustment" and int(row["amount_minor"]) < 0)
        live = not row["expires_on"] or date.fromisoformat(row["expires_on"]) >= as_of
        return active and is_credit and live

    credits = sum(abs(int(lines[line_id]["amount_minor"])) for line_id in lines if counts(line_id))
    used = sum(abs(int(row["amount_minor"])) for row in rows
               if row["event"] in {"applied", "lapsed", "reversed"} and counts(row["line_id"]))
    return credits - used


def test_the_credit_reconciles_from_the_audit_csv_alone(stack: StubStack, tmp_path: Any) -> None:
    stack.send("account.onboard", onboarding("epsilon"))
    for body in (
        line("e-40", "40.00", account="epsilon"),
        line("e-gift", "15.00", account="epsilon", kind="gift", expires_on="2026-01-14"),
        line("e-adj", "-20.00", account="epsilon", kind="adjustment"),
        line("e-60", "60.00", account="epsilon"),
        line("e-70", "70.00", account="epsilon"),
        line("e-12", "12.00", account="epsilon"),
        line("e-later", "5.00", account="epsilon", effective_date="2026-03-01"),
        line("e-10pc", None, account="epsilon", kind="discount", percent="10"),
        line("e-big", "120.00", account="epsilon"),  # refused: over the per-line cap
    ):
        stack.send(CREATE, body)
    assert decide(stack, "e-60", decision="approved", identity="ops-lead", reason="") == 0
    assert decide(stack, "e-70", decision="declined", identity="ops-lead", reason="") == 0
    stack.send(REVERSE, reversal("e-12", "r-12", account="epsilon"))

    expected = {date(2026, 1, 10): 4000 + 1500 + 2000 + 6000 + 500, date(2026, 1, 15): 1300 + 2000 + 6000 + 500,
                date(2026, 2, 15): 300 + 6000 + 500}
    for instant in (None, JAN_15, FEB_15):
        if instant is not None:
            bill_at(stack, instant)
        as_of = (instant or START).date()
        rows = stack.audit_csv("epsilon", cwd=tmp_path)
        assert credit(stack, "epsilon", as_of) == _active_credit(rows, as_of) == expected[as_of]
    assert [row["event"] for row in rows if row["line_id"] == "e-big"] == ["rejected:limit_exceeded"]
    assert {row["event"] for row in rows if row["line_id"] == "e-gift"} == {"accepted", "lapsed"}


def test_an_embedded_line_above_the_threshold_is_held_the_others_apply(stack: StubStack) -> None:
    stack.send("account.onboard", onboarding("zeta", lines=[line("z-20", "20.00", account=None),
                                                             line("z-80", "80.00", account=None)]))
    assert invoices(stack.engine, "zeta") == [
        (date(2026, 1, 10), 0, [("recurring", None, 484), ("credit", "z-20", -484)]),
    ]
    with stack.engine.connect() as connection:
        held = dict(connection.execute(select(BalanceLine.line_id, BalanceLine.requires_approval)).all())
    assert held == {"z-20": False, "z-80": True}
    assert credit(stack, "zeta", date(2026, 1, 10)) == 2000 - 484


@pytest.mark.parametrize(("lines", "code", "reason"), [
    ([line("l-1", "20.00", account=None), line("l-2", "120.00", account=None)], "limit_exceeded",
     "balance_lines.1 (l-2): 120.00 USD is above producer crm's per_line limit of 100.00 USD"),
    ([line("l-1", "20.00", account=None, kind="referral")], "forbidden",
     "balance_lines.0 (l-1): producer crm may not create referral lines (its kinds: credit, gift, discount, "
     "adjustment)"),
    ([line("l-1", "90.00", account=None), line("l-2", "90.00", account=None)], "limit_exceeded",
     "balance_lines.1 (l-2): 90.00 USD would take producer crm's lines for account eta in the last 24 hours to "
     "180.00, above its per_account_day limit of 150.00 USD"),
], ids=["over_per_line", "kind_not_allowed", "over_per_account_day_together"])
def test_an_embedded_line_over_a_limit_refuses_the_whole_onboarding(
    clean_pg: Engine, pg_url: str, lines: list[dict[str, Any]], code: str, reason: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack = StubStack(pg_url, producers(), START)
    try:
        accepted = counter("billing_balance_lines_total", producer="crm", kind="credit", outcome="accepted")
        message_id = stack.send("account.onboard", onboarding("eta", lines=lines))
        assert rejections_of(stack.engine, message_id) == [(code, reason)]
        assert [count(stack.engine, table) for table in (Account, BalanceLine, Invoice)] == [0, 0, 0]
        assert counter("billing_balance_lines_total", producer="crm", kind="credit", outcome="accepted") == accepted
        audited = [(row["event"], row["line_id"]) for row in audit_of(stack, "eta", capsys)]
        assert audited == [(f"rejected:{code}", spec["line_id"]) for spec in lines]
    finally:
        stack.close()


def test_counters_follow_committed_lines_by_producer_and_kind(stack: StubStack) -> None:
    def now(outcome: str, kind: str = "credit") -> float:
        return counter("billing_balance_lines_total", producer="crm", kind=kind, outcome=outcome)

    before = {outcome: now(outcome) for outcome in ("accepted", "pending_approval", "rejected", "approved", "reversed")}
    amount = counter("billing_balance_amount_minor_total", producer="crm", kind="credit", currency="USD")
    per_line = counter("billing_limit_hits_total", producer="crm", kind="credit", limit="per_line")
    held = counter("billing_limit_hits_total", producer="crm", kind="credit", limit="approval_above")
    stack.send("account.onboard", onboarding("acme"))
    stack.send(CREATE, line("c-1", "10.00"))
    stack.send(CREATE, line("c-2", "20.00"))
    stack.send(CREATE, line("c-3", "60.00"))  # held
    stack.send(CREATE, line("c-4", "100.01"))  # refused
    assert decide(stack, "c-3", decision="approved", identity="ops-lead", reason="") == 0
    stack.send(REVERSE, reversal("c-1", "r-1"))

    assert {outcome: now(outcome) - before[outcome] for outcome in before} == {
        "accepted": 2, "pending_approval": 1, "rejected": 1, "approved": 1, "reversed": 1,
    }
    assert counter("billing_balance_amount_minor_total", producer="crm", kind="credit", currency="USD") - amount == 9000
    assert counter("billing_limit_hits_total", producer="crm", kind="credit", limit="per_line") - per_line == 1
    assert counter("billing_limit_hits_total", producer="crm", kind="credit", limit="approval_above") - held == 1


def test_the_database_refuses_to_change_what_the_actors_wrote(stack: StubStack) -> None:
    stack.send("account.onboard", onboarding("acme"))
    stack.send(CREATE, line("c-1", "40.00"))
    stack.send(CREATE, line("c-held", "60.00"))
    stack.send(CREATE, line("c-big", "160.00"))
    assert decide(stack, "c-held", decision="approved", identity="ops-lead", reason="") == 0
    bill_at(stack, JAN_15)
    stack.send(REVERSE, reversal("c-held", "r-held"))  # 60.00 left: held, then declined
    assert approve_or_decline_reversal("r-held", decision=Decision.DECLINED, identity="ops-lead", reason="",
                                       ctx=stack.ctx) == 0
    for table in ("balance_lines", "balance_entries", "balance_line_decisions", "balance_rejections",
                  "balance_line_reversals", "reversal_decisions"):
        for statement in (f"UPDATE {table} SET created_at = created_at", f"DELETE FROM {table}"):
            with pytest.raises(DBAPIError, match="append-only"), stack.engine.begin() as connection:
                connection.execute(text(statement))
    with pytest.raises(DBAPIError, match="append-only"), transaction(stack.ctx.sessions) as session:
        session.scalars(select(BalanceLine).where(BalanceLine.line_id == "c-1")).one().amount_minor = 1
    assert credit(stack, "acme", date(2026, 1, 15)) == 4000 + 6000 - 3000
