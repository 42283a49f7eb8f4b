"""Writing balance lines: the append-only ledger rows a producer's line becomes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from jobs.canonical import body_hash
from jobs.receiving import Received
from models.tables.account import Account
from models.tables.balance_line import BalanceLine


def add_line(
    session: Session,
    account: Account,
    received: Received,
    *,
    spec: object,
    spec_body: dict[str, object],
    today: date,
    requires_approval: bool = False,
) -> BalanceLine:
    """Append one balance line; ``spec`` is a validated balance-line body (created or embedded)."""
    percent: Decimal | None = getattr(spec, "percent_value", None)
    row = BalanceLine(
        line_id=getattr(spec, "line_id"),
        account_id=account.id,
        kind=getattr(spec, "kind"),
        amount_minor=getattr(spec, "amount_minor", None),
        percent=percent,
        currency=getattr(spec, "currency"),
        label=getattr(spec, "label"),
        reason=getattr(spec, "reason"),
        author=getattr(spec, "author"),
        producer=received.envelope.producer,
        message_id=received.envelope.id,
        effective_date=getattr(spec, "effective_date", None) or today,
        expires_on=getattr(spec, "expires_on", None),
        requires_approval=requires_approval,
        body_hash=body_hash(spec_body),
        created_at=received.now,
    )
    session.add(row)
    return row
