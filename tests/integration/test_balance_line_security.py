"""Every way a balance line can be illegitimate, through the real actors on PostgreSQL.

Unsigned, forged, expired, replayed, wrong-key, retired-key, body-altered, unknown-producer and
unpermitted (type, kind) lines and lines over a cap are refused before any ledger write: no row in
``balance_lines`` or ``balance_entries``, exactly one rejection with its code, and one row in the
account's ``billing audit``. Lines above the approval threshold are held instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from jobs.envelope import make_envelope
from jobs.metrics import REGISTRY
from models.tables.balance_line import BalanceLine
from models.tables.balance_rejection import BalanceRejection
from tests.integration.producers import (
    CRM_SECRET,
    audit_of,
    count,
    ledger_counts,
    line,
    onboarding,
    producers,
    rejections_of,
)
from tests.integration.stub_stack import StubStack

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
CREATE = "balance_line.create"


@pytest.fixture
def stack(clean_pg: Engine, pg_url: str) -> Iterator[StubStack]:
    stack = StubStack(pg_url, producers(), START)
    try:
        stack.send("account.onboard", onboarding("acme"))
        stack.send("account.onboard", onboarding("acme-2"))
        yield stack
    finally:
        stack.close()


def _unsigned(stack: StubStack) -> dict[str, Any]:
    envelope = stack.envelope(CREATE, line("l-unsigned"))
    del envelope["signature"]
    return envelope


def _forged(stack: StubStack) -> dict[str, Any]:
    return make_envelope(CREATE, line("l-forged"), producer="crm", key_id="crm-2",
                         secret=b"not-the-secret-of-crm-at-all", now=stack.clock.now())


def _expired(stack: StubStack) -> dict[str, Any]:
    return stack.envelope(CREATE, line("l-expired"), at=stack.clock.now() - timedelta(seconds=301))


def _wrong_key(stack: StubStack) -> dict[str, Any]:
    return make_envelope(CREATE, line("l-wrong-key"), producer="crm", key_id="crm-9", secret=CRM_SECRET.encode(),
                         now=stack.clock.now())


def _retired_key(stack: StubStack) -> dict[str, Any]:
    return stack.envelope(CREATE, line("l-retired-key"), key_id="crm-0")


def _altered(stack: StubStack) -> dict[str, Any]:
    envelope = stack.envelope(CREATE, line("l-altered", "10.00"))
    envelope["body"] = {**envelope["body"], "amount": "99.00"}
    return envelope


def _unknown_producer(stack: StubStack) -> dict[str, Any]:
    return make_envelope(CREATE, line("l-mallory"), producer="mallory", key_id="m-1", secret=CRM_SECRET.encode(),
                         now=stack.clock.now())


def _type_not_allowed(stack: StubStack) -> dict[str, Any]:
    return stack.envelope(CREATE, line("l-ops"), producer="ops")


def _kind_not_allowed(stack: StubStack) -> dict[str, Any]:
    return stack.envelope(CREATE, line("l-support-gift", kind="gift"), producer="support")


def _kind_not_configured(stack: StubStack) -> dict[str, Any]:
    return stack.envelope(CREATE, line("l-referral", kind="referral"))


def _over_per_line(stack: StubStack) -> dict[str, Any]:
    return stack.envelope(CREATE, line("l-big", "100.01"))


def _over_per_day(stack: StubStack) -> dict[str, Any]:
    for n in range(3):  # 3 x 45.00 = 135.00 of the 150.00 a day
        stack.send(CREATE, line(f"l-day-{n}", "45.00"))
    return stack.envelope(CREATE, line("l-day-3", "45.00"))


CASES: dict[str, tuple[Callable[[StubStack], dict[str, Any]], str, str]] = {
    "unsigned": (_unsigned, "unauthorized", "not signed"),
    "forged": (_forged, "unauthorized", "signature does not match key 'crm-2'"),
    "expired": (_expired, "unauthorized", "the tolerance is 300 s"),
    "wrong_key_id": (_wrong_key, "unauthorized", "has no key 'crm-9'"),
    "retired_key": (_retired_key, "unauthorized", "expired after 2025-12-31"),
    "body_altered_after_signing": (_altered, "unauthorized", "the message was altered"),
    "unknown_producer": (_unknown_producer, "unauthorized", "unknown producer 'mallory'"),
    "producer_lacks_the_type": (_type_not_allowed, "forbidden", "may not send balance_line.create messages"),
    "producer_lacks_the_kind": (_kind_not_allowed, "forbidden", "may not create gift lines (its kinds: credit)"),
    "kind_not_configured": (_kind_not_configured, "forbidden", "may not create referral lines"),
    "over_per_line": (_over_per_line, "limit_exceeded", "per_line limit of 100.00 USD"),
    "over_per_account_day": (_over_per_day, "limit_exceeded", "to 180.00, above its per_account_day limit of 150.00"),
}


def rejected_total(code: str) -> float:
    return sum(
        sample.value for metric in REGISTRY.collect() if metric.name == "billing_rejections"
        for sample in metric.samples if sample.name.endswith("_total") and sample.labels["code"] == code
    )


@pytest.mark.parametrize("case", list(CASES))
def test_an_illegitimate_line_is_refused_before_any_ledger_write_and_audited(
    stack: StubStack, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    build, code, reason = CASES[case]
    envelope = build(stack)
    lines_before, entries_before = ledger_counts(stack.engine)
    refused_before = rejected_total(code)

    message_id = stack.enqueue(envelope)

    assert ledger_counts(stack.engine) == (lines_before, entries_before)
    assert count(stack.engine, BalanceLine, BalanceLine.line_id == envelope["body"]["line_id"]) == 0
    [(stored_code, stored_reason)] = rejections_of(stack.engine, message_id)
    assert stored_code == code and reason in stored_reason, stored_reason
    assert rejected_total(code) == refused_before + 1
    [audited] = [row for row in audit_of(stack, "acme", capsys) if row["message_id"] == message_id]
    assert audited["event"] == f"rejected:{code}"
    assert audited["line_id"] == envelope["body"]["line_id"] and audited["reason"] == stored_reason
    assert audited["kind"] == envelope["body"]["kind"]


def test_a_replayed_copy_is_refused_even_with_a_valid_signature(
    stack: StubStack, capsys: pytest.CaptureFixture[str]
) -> None:
    envelope = stack.envelope(CREATE, line("l-once", "10.00"))
    stack.enqueue(envelope)
    assert ledger_counts(stack.engine) == (1, 0)

    stack.clock.advance(timedelta(seconds=30))  # well within the signature tolerance
    stack.enqueue(dict(envelope), at=stack.clock.now())

    assert ledger_counts(stack.engine) == (1, 0)
    [(code, reason)] = rejections_of(stack.engine, envelope["id"])
    assert code == "unauthorized" and "a replayed copy is refused" in reason
    events = [row["event"] for row in audit_of(stack, "acme", capsys) if row["message_id"] == envelope["id"]]
    assert events == ["accepted", "rejected:unauthorized"]


def test_an_authenticated_refusal_keeps_its_author_an_unauthenticated_one_does_not(stack: StubStack) -> None:
    stack.send(CREATE, line("l-big", "120.00", author="agent-12"))
    stack.enqueue(_forged(stack))
    with stack.engine.connect() as connection:
        rows = connection.execute(select(BalanceRejection.line_id, BalanceRejection.authenticated,
                                         BalanceRejection.author, BalanceRejection.amount_minor)
                                  .order_by(BalanceRejection.id)).all()
    assert [tuple(row) for row in rows] == [("l-big", True, "agent-12", 12000), ("l-forged", False, None, 1000)]


def test_the_old_key_keeps_working_until_its_date(stack: StubStack) -> None:
    stack.send(CREATE, line("l-old-key", "10.00"), key_id="crm-1")
    assert count(stack.engine, BalanceLine, BalanceLine.line_id == "l-old-key") == 1

    stack.clock.set(datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC))
    message_id = stack.send(CREATE, line("l-old-key-late", "10.00"), key_id="crm-1")

    assert count(stack.engine, BalanceLine, BalanceLine.line_id == "l-old-key-late") == 0
    [(code, reason)] = rejections_of(stack.engine, message_id)
    assert code == "unauthorized" and "key 'crm-1' of producer 'crm' expired after 2026-01-31" in reason


def test_the_rate_limit_refuses_the_line_past_it_and_recovers_after_a_minute(clean_pg: Engine, pg_url: str) -> None:
    stack = StubStack(pg_url, producers(rate_per_minute=3), START)
    try:
        stack.send("account.onboard", onboarding("acme"))
        for n in range(3):
            stack.send(CREATE, line(f"l-rate-{n}", "1.00"))
        refused = stack.send(CREATE, line("l-rate-3", "1.00"))
        stack.clock.advance(timedelta(seconds=61))
        stack.send(CREATE, line("l-rate-4", "1.00"))
        assert ledger_counts(stack.engine) == (4, 0)
        [(code, reason)] = rejections_of(stack.engine, refused)
        assert code == "limit_exceeded"
        assert reason == "producer crm sent 3 lines in the last minute: its rate_per_minute limit is 3"
    finally:
        stack.close()


def test_a_line_above_the_approval_threshold_is_held_not_refused(
    stack: StubStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.send(CREATE, line("l-held", "80.00"))
    with stack.engine.connect() as connection:
        held = connection.execute(select(BalanceLine.requires_approval).where(BalanceLine.line_id == "l-held"))
        assert held.scalar_one() is True
    [row] = [row for row in audit_of(stack, "acme", capsys) if row["line_id"] == "l-held"]
    assert (row["event"], row["amount_minor"], row["producer"], row["author"]) == (
        "pending_approval", "8000", "crm", "agent-7"
    )


def test_the_audit_of_an_account_never_shows_another_account_whose_id_contains_it(
    stack: StubStack, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = stack.send(CREATE, line("l-acme-big", "120.00", account="acme"))
    theirs = stack.send(CREATE, line("l-acme-2-big", "120.00", account="acme-2"))

    def refused(account: str) -> list[str]:
        return [row["message_id"] for row in audit_of(stack, account, capsys) if row["event"].startswith("rejected")]

    assert refused("acme") == [mine]
    assert refused("acme-2") == [theirs]
