"""Writing balance lines: the append-only ledger rows a producer's line becomes."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from jobs.canonical import body_hash
from jobs.receiving import Received
from jobs.schemas import BalanceLineSpec
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
