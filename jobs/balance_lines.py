"""``balance_line.create`` and ``balance_line.reverse``: the customer's balance, append-only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dramatiq
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

import worker.broker  # noqa: F401 - installs the broker before the actors below are declared
from jobs import idempotency, ledger, parking, permissions, runtime
from jobs.canonical import body_hash
from jobs.errors import Conflict, CurrencyMismatchRejected, Forbidden
from jobs.receiving import Received, receive
from jobs.schemas import CreateBalanceLine, ReverseBalanceLine
from models.tables.account import Account
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from worker.clock import local_date
from worker.db import lock_account
from worker.metrics import BALANCE_AMOUNT, BALANCE_LINES
from worker.settings import get_settings

CREATE = "balance_line.create"
REVERSE = "balance_line.reverse"


def handle_create_balance_line(session: Session, received: Received, body: CreateBalanceLine) -> str:
    rt = runtime.get()
    lock_account(session, body.account)
    key = f"balance_line:{body.line_id}"
    digest = body_hash(received.envelope.body)
    if idempotency.seen(session, key, digest, f"balance line {body.line_id}"):
        return "duplicate"
    account = session.get(Account, body.account)
    if account is None:
        grace = timedelta(seconds=rt.settings.unknown_account_grace_seconds)
        return parking.park(session, received, body.account, grace)
    if body.currency != account.currency:
        raise CurrencyMismatchRejected(
            f"currency {body.currency} does not match the account's {account.currency}"
        )
    producer = rt.registry.get(received.envelope.producer)
    if producer is None:  # verified envelopes always have one; kept for type narrowing
        raise Forbidden(f"producer {received.envelope.producer} is not configured")
    needs_approval = permissions.check_line(
        session, producer, account_id=account.id, kind=body.kind, amount_minor=body.amount_minor,
        currency=body.currency, now=received.now,
    )
    today = local_date(received.now, account.timezone)
    ledger.add_line(session, account, received, spec=body, spec_body=received.envelope.body, today=today,
                    requires_approval=needs_approval)
    outcome = "pending_approval" if needs_approval else "accepted"
    idempotency.remember(session, key, message_type=CREATE, message_id=received.envelope.id,
                         body_hash=digest, outcome=outcome, now=received.now)
    BALANCE_LINES.labels(producer=producer.name, kind=body.kind, outcome=outcome).inc()
    if body.amount_minor is not None:
        BALANCE_AMOUNT.labels(producer=producer.name, kind=body.kind, currency=body.currency).inc(
            abs(body.amount_minor)
        )
    return "processed" if not needs_approval else "pending_approval"


def remaining_of(session: Session, line: BalanceLine) -> int:
    """What is left of a line: its amount less everything applied, lapsed or reversed."""
    used = session.scalar(
        select(func.coalesce(func.sum(BalanceEntry.amount_minor), 0)).where(BalanceEntry.balance_line_id == line.id)
    )
    return max(0, abs(line.amount_minor or 0) - int(used or 0))


def handle_reverse_balance_line(session: Session, received: Received, body: ReverseBalanceLine) -> str:
    lock_account(session, body.account)
    key = f"{REVERSE}:{body.reversal_id}"
    digest = body_hash(received.envelope.body)
    if idempotency.seen(session, key, digest, f"reversal {body.reversal_id}"):
        return "duplicate"
    line = session.scalar(select(BalanceLine).where(BalanceLine.line_id == body.line_id))
    if line is None or line.account_id != body.account:
        raise Conflict(f"balance line {body.line_id} does not exist on account {body.account}")
    left = remaining_of(session, line)
    session.execute(insert(BalanceEntry), [{
        "balance_line_id": line.id, "kind": "reversed", "amount_minor": left, "invoice_id": None,
        "invoice_line_id": None, "message_id": received.envelope.id, "created_at": received.now,
    }])
    idempotency.remember(session, key, message_type=REVERSE, message_id=received.envelope.id,
                         body_hash=digest, outcome="processed", now=received.now)
    BALANCE_LINES.labels(producer=received.envelope.producer, kind=line.kind, outcome="reversed").inc()
    return "processed"


@dramatiq.actor(actor_name="balances.create_balance_line", queue_name="balances",
                max_retries=get_settings().max_retries)
def create_balance_line(envelope: Any) -> None:
    receive(CREATE, envelope, handle_create_balance_line)


@dramatiq.actor(actor_name="balances.reverse_balance_line", queue_name="balances",
                max_retries=get_settings().max_retries)
def reverse_balance_line(envelope: Any) -> None:
    receive(REVERSE, envelope, handle_reverse_balance_line)
