"""``balance_line.create`` and ``balance_line.reverse``: the customer's balance, append-only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from jobs import idempotency, ledger, parking, reversal_checks
from jobs.after_commit import on_commit
from jobs.canonical import body_hash
from jobs.clock import local_date
from jobs.context import JobContext
from jobs.errors import Conflict, CurrencyMismatchRejected
from jobs.metrics import BALANCE_LINES, LIMIT_HITS
from jobs.outcomes import Outcome
from jobs.pipeline import Received
from jobs.schemas import CreateBalanceLine, ReverseBalanceLine
from models.tables.account import Account
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_line_reversal import BalanceLineReversal
from models.tables.locks import lock_account

CREATE = "balance_line.create"
REVERSE = "balance_line.reverse"


def handle_create_balance_line(ctx: JobContext, session: Session, received: Received,
                               body: CreateBalanceLine) -> Outcome:
    lock_account(session, body.account)
    account = session.get(Account, body.account)
    if account is None:  # its key is claimed when it applies, after the account exists
        grace = timedelta(seconds=ctx.settings.unknown_account_grace_seconds)
        return parking.park(session, received, body.account, grace, ctx)
    key = f"balance_line:{body.line_id}"
    if not idempotency.claim(session, key, message_type=CREATE, message_id=received.envelope.id,
                             body_hash=body_hash(received.envelope.body), now=received.now,
                             what=f"balance line {body.line_id}"):
        return Outcome.DUPLICATE
    if body.currency != account.currency:
        raise CurrencyMismatchRejected(
            f"currency {body.currency} does not match the account's {account.currency}"
        )
    line = ledger.grant(ctx, session, account, received, spec=body, spec_body=received.envelope.body,
                        today=local_date(received.now, account.timezone))
    if line.requires_approval:
        idempotency.settle(session, key, Outcome.PENDING_APPROVAL)
        return Outcome.PENDING_APPROVAL
    return Outcome.PROCESSED


def remaining_of(session: Session, line: BalanceLine) -> int:
    """What is left of a line: its amount less everything applied, lapsed or reversed."""
    used = session.scalar(
        select(func.coalesce(func.sum(BalanceEntry.amount_minor), 0)).where(BalanceEntry.balance_line_id == line.id)
    )
    return max(0, abs(line.amount_minor or 0) - int(used or 0))


def handle_reverse_balance_line(ctx: JobContext, session: Session, received: Received,
                                body: ReverseBalanceLine) -> Outcome:
    """Cancel what is left of a line with an opposite entry that says who asked and why.

    A percent discount has no amount: its zero entry marks it used, so it applies to no invoice.
    Above the producer's approval threshold nothing is cancelled yet: the reversal is held
    (``balance_line_reversals``) for a second identity, its key settled ``pending_approval`` so a
    redelivery is a duplicate, and the line keeps applying to invoices until an approval.
    """
    lock_account(session, body.account)
    key = f"{REVERSE}:{body.reversal_id}"
    if not idempotency.claim(session, key, message_type=REVERSE,
                             message_id=received.envelope.id, body_hash=body_hash(received.envelope.body),
                             now=received.now, what=f"reversal {body.reversal_id}"):
        return Outcome.DUPLICATE
    line = session.scalar(select(BalanceLine).where(BalanceLine.line_id == body.line_id))
    if line is None or line.account_id != body.account:
        raise Conflict(f"balance line {body.line_id} does not exist on account {body.account}")
    producer = ledger.producer_of(ctx, received)
    remaining = remaining_of(session, line)
    kind = line.kind
    if reversal_checks.check(session, producer, line, remaining, received.now):
        session.add(BalanceLineReversal(
            reversal_id=body.reversal_id, balance_line_id=line.id, account_id=line.account_id,
            amount_minor=remaining, producer=producer.name, author=body.author, reason=body.reason,
            message_id=received.envelope.id, created_at=received.now,
        ))
        idempotency.settle(session, key, Outcome.PENDING_APPROVAL)
        on_commit(session, lambda: count_held_reversal(producer.name, kind))
        return Outcome.PENDING_APPROVAL
    session.execute(insert(BalanceEntry), [{
        "balance_line_id": line.id, "kind": "reversed", "amount_minor": remaining,
        "invoice_id": None, "invoice_line_id": None, "message_id": received.envelope.id,
        "producer": producer.name, "author": body.author, "reason": body.reason, "created_at": received.now,
    }])
    on_commit(session, lambda: BALANCE_LINES.labels(producer=producer.name, kind=kind,
                                                              outcome="reversed").inc())
    return Outcome.PROCESSED


def count_held_reversal(producer: str, kind: str) -> None:
    """Counters of a committed reversal held for approval (its threshold is a limit reached, as a line's)."""
    BALANCE_LINES.labels(producer=producer, kind=kind, outcome="reversal_pending_approval").inc()
    LIMIT_HITS.labels(producer=producer, kind=kind, limit="approval_above").inc()
