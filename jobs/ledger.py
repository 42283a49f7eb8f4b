"""Writing balance lines: the append-only ledger rows a producer's line becomes.

Every line, sent alone (``balance_line.create``) or embedded in an onboarding, goes through
``grant``: the producer's permissions and limits first, then the row (held for approval above the
producer's threshold), then its counters once the transaction commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from jobs import headroom, idempotency, permissions
from jobs.after_commit import on_commit
from jobs.canonical import body_hash
from jobs.context import JobContext
from jobs.errors import Conflict, Forbidden, InvalidMessage, LimitExceeded
from jobs.metrics import BALANCE_AMOUNT, BALANCE_LINES, LIMIT_HITS
from jobs.pipeline import Received
from jobs.producers import Producer
from jobs.schemas import BalanceLineSpec
from models.billing.errors import BillingError
from models.tables.account import Account
from models.tables.balance_line import BalanceLine


def add_line(
    session: Session,
    account: Account,
    received: Received,
    *,
    spec: BalanceLineSpec,
    spec_body: dict[str, object],
    today: date,
    requires_approval: bool = False,
) -> BalanceLine:
    """Append one balance line; ``spec`` is a validated balance-line body (created or embedded)."""
    row = BalanceLine(
        line_id=spec.line_id,
        account_id=account.id,
        kind=spec.kind,
        amount_minor=spec.amount_minor,
        percent=spec.percent_value,
        currency=spec.currency,
        label=spec.label,
        reason=spec.reason,
        author=spec.author,
        producer=received.envelope.producer,
        message_id=received.envelope.id,
        effective_date=spec.effective_date or today,
        expires_on=spec.expires_on,
        requires_approval=requires_approval,
        body_hash=body_hash(spec_body),
        created_at=received.now,
    )
    session.add(row)
    return row


def producer_of(ctx: JobContext, received: Received) -> Producer:
    """The configured producer that signed the message (verified envelopes always have one)."""
    producer = ctx.registry.get(received.envelope.producer)
    if producer is None:
        raise Forbidden(f"producer {received.envelope.producer} is not configured")
    return producer


def count_granted(producer: str, spec: BalanceLineSpec, held: bool) -> None:
    """Counters of one committed line: accepted (its amount granted) or held for approval."""
    BALANCE_LINES.labels(producer=producer, kind=spec.kind, outcome="pending_approval" if held else "accepted").inc()
    if held:
        LIMIT_HITS.labels(producer=producer, kind=spec.kind, limit="approval_above").inc()
    elif spec.amount_minor is not None:
        BALANCE_AMOUNT.labels(producer=producer, kind=spec.kind, currency=spec.currency).inc(abs(spec.amount_minor))


def grant(
    ctx: JobContext,
    session: Session,
    account: Account,
    received: Received,
    *,
    spec: BalanceLineSpec,
    spec_body: dict[str, Any],
    today: date,
    where: str | None = None,
) -> BalanceLine:
    """Check the producer may create ``spec`` for ``account``, then append it (held for a second
    identity above the producer's approval threshold). ``where`` prefixes a refusal's reason: an
    embedded line names itself."""
    producer = producer_of(ctx, received)
    try:
        check_applicable(spec, today)
        held = permissions.check_line(session, producer, account_id=account.id, kind=spec.kind,
                                      amount_minor=spec.amount_minor, currency=spec.currency, now=received.now,
                                      percent=spec.percent_value)
        headroom.check_line(session, account.id, spec.amount_minor, spec.currency,
                            catch_up_periods=ctx.settings.max_catch_up_periods)
    except (Forbidden, LimitExceeded) as refusal:
        if where is None:
            raise
        raise type(refusal)(f"{where}: {refusal.reason}") from None
    except InvalidMessage as refusal:
        if where is None:
            raise
        raise InvalidMessage(f"{where}.{refusal.field}", refusal.reason.split(": ", 1)[-1]) from None
    except BillingError as refusal:
        if where is None:
            raise
        raise type(refusal)(f"{where}.{refusal.field}", refusal.reason) from None
    row = add_line(session, account, received, spec=spec, spec_body=spec_body, today=today, requires_approval=held)
    on_commit(session, lambda: count_granted(producer.name, spec, held))
    return row


def check_applicable(spec: BalanceLineSpec, today: date) -> None:
    """Refuse a line that could never apply: it expires before it takes effect (DESIGN §2).

    Its effective date is the one it gives, or the day it was received in the account's zone.
    """
    if spec.expires_on is None:
        return
    effective = spec.effective_date or today
    if spec.expires_on < effective:
        given = "its effective_date" if spec.effective_date is not None else "the day it was received"
        raise InvalidMessage("expires_on",
                             f"{spec.expires_on} is before {given} {effective}: the line could never apply")


def claim_embedded(session: Session, received: Received, account_id: str, spec: BalanceLineSpec,
                   body: dict[str, Any], where: str) -> None:
    """Claim an embedded line's ``line_id`` as a ``balance_line.create`` would, so the key is one key.

    Its body is hashed as the create body it stands for (the account added): the same line sent
    alone afterwards is then a duplicate, another line under that id a conflict.
    """
    create_body = {**body, "account": account_id}
    if not idempotency.claim(session, f"balance_line:{spec.line_id}", message_type="balance_line.create",
                             message_id=received.envelope.id, body_hash=body_hash(create_body), now=received.now,
                             what=f"balance line {spec.line_id}"):
        raise Conflict(f"{where}: balance line {spec.line_id} already exists; an embedded line needs a new line_id")


def grant_embedded(
    ctx: JobContext,
    session: Session,
    account: Account,
    received: Received,
    specs: Sequence[BalanceLineSpec],
    bodies: Sequence[Any],
    today: date,
) -> list[BalanceLine]:
    """An onboarding's ``balance_lines``, each checked like a ``balance_line.create``.

    One refused line refuses the whole onboarding (the caller's transaction rolls back), with a
    reason that names the line; a line above the approval threshold is held, the others apply to
    the catch-up invoice.
    """
    granted = []
    for index, (spec, body) in enumerate(zip(specs, bodies, strict=True)):
        where = f"balance_lines.{index} ({spec.line_id})"
        claim_embedded(session, received, account.id, spec, body if isinstance(body, dict) else {}, where)
        granted.append(grant(ctx, session, account, received, spec=spec, spec_body=body, today=today, where=where))
    return granted
