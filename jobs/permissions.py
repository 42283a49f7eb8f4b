"""What a producer may do with balance lines: kinds, caps, a rolling daily cap, a rate, approval.

Checked inside the line's transaction, under the account lock, before anything is written, so a
refused line leaves no trace in the ledger (only its rejection).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobs.errors import Forbidden, LimitExceeded
from jobs.producers import Producer
from models.billing.money import format_amount
from models.tables.balance_line import BalanceLine
from worker.metrics import LIMIT_HITS


def _refuse(producer: Producer, limit: str, reason: str) -> LimitExceeded:
    LIMIT_HITS.labels(producer=producer.name, limit=limit).inc()
    return LimitExceeded(reason)


def check_line(
    session: Session,
    producer: Producer,
    *,
    account_id: str,
    kind: str,
    amount_minor: int | None,
    currency: str,
    now: datetime,
) -> bool:
    """Raise when the producer may not create this line; return True when it needs approval."""
    if kind not in producer.kinds:
        raise Forbidden(f"producer {producer.name} may not create {kind} lines (allowed: {', '.join(producer.kinds)})")
    limits = producer.limits
    if limits.rate_per_minute is not None:
        recent = session.scalar(
            select(func.count()).select_from(BalanceLine)
            .where(BalanceLine.producer == producer.name, BalanceLine.created_at > now - timedelta(minutes=1))
        ) or 0
        if recent >= limits.rate_per_minute:
            raise _refuse(producer, "rate_per_minute",
                          f"producer {producer.name} sent more than rate_per_minute = {limits.rate_per_minute} lines")
    if amount_minor is None:
        return False
    amount = abs(amount_minor)
    shown = format_amount(amount, currency)
    per_line = limits.minor("per_line", currency)
    if per_line is not None and amount > per_line:
        raise _refuse(producer, "per_line", f"{shown} {currency} is above producer {producer.name}'s per_line "
                                            f"limit of {format_amount(per_line, currency)} {currency}")
    per_day = limits.minor("per_account_day", currency)
    if per_day is not None:
        granted = session.scalar(
            select(func.coalesce(func.sum(func.abs(BalanceLine.amount_minor)), 0))
            .where(BalanceLine.producer == producer.name, BalanceLine.account_id == account_id,
                   BalanceLine.created_at > now - timedelta(hours=24))
        ) or 0
        if int(granted) + amount > per_day:
            raise _refuse(producer, "per_account_day",
                          f"{shown} {currency} would take producer {producer.name}'s lines for account {account_id} "
                          f"in the last 24 hours to {format_amount(int(granted) + amount, currency)}, above its "
                          f"per_account_day limit of {format_amount(per_day, currency)} {currency}")
    threshold = limits.minor("approval_above", currency)
    return threshold is not None and amount > threshold
