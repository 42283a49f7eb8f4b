"""What a producer may do with balance lines: kinds, caps, a rolling daily cap, a rate, approval.

Checked inside the line's transaction, under the account lock, before anything is written, so a
refused line leaves no trace in the ledger (only its rejection and audit row). The per-account
caps are exact because the account lock serialises its lines; the rate limit is per producer, so
on PostgreSQL a producer lock (taken after the account lock, always in that order) serialises a
rate-limited producer's lines. Lines and reversals held for approval count towards the caps:
queueing many pending ones is no way around them (a held reversal counts what it asked for, from
when it arrived; the entry its approval applies is not counted again).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobs.errors import Forbidden, LimitExceeded
from jobs.metrics import LIMIT_HITS
from jobs.producers import Producer
from models.billing.money import format_amount
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_line_reversal import BalanceLineReversal
from models.tables.locks import LockSpace, lock


def _refuse(producer: Producer, kind: str, limit: str, reason: str) -> LimitExceeded:
    LIMIT_HITS.labels(producer=producer.name, kind=kind, limit=limit).inc()
    return LimitExceeded(reason)


def check_kind(producer: Producer, kind: str, verb: str = "create") -> None:
    """Forbidden unless the producer's ``kinds`` include ``kind``."""
    if not producer.may_create(kind):
        allowed = ", ".join(producer.kinds)
        raise Forbidden(f"producer {producer.name} may not {verb} {kind} lines (its kinds: {allowed})")


def _lock_producer(session: Session, producer: Producer) -> None:
    lock(session, LockSpace.PRODUCER, producer.name)


def _check_rate(session: Session, producer: Producer, kind: str, now: datetime) -> None:
    limit = producer.limits.rate_per_minute
    if limit is None:
        return
    _lock_producer(session, producer)
    recent = session.scalar(
        select(func.count()).select_from(BalanceLine)
        .where(BalanceLine.producer == producer.name, BalanceLine.created_at > now - timedelta(minutes=1))
    ) or 0
    if recent >= limit:
        raise _refuse(producer, kind, "rate_per_minute",
                      f"producer {producer.name} sent {recent} lines in the last minute: its rate_per_minute "
                      f"limit is {limit}")


def _check_day(session: Session, producer: Producer, account_id: str, kind: str, amount: int, currency: str,
               now: datetime) -> None:
    per_day = producer.limits.minor("per_account_day", currency)
    if per_day is None:
        return
    since = now - timedelta(hours=24)
    granted = int(session.scalar(
        select(func.coalesce(func.sum(func.abs(BalanceLine.amount_minor)), 0))
        .where(BalanceLine.producer == producer.name, BalanceLine.account_id == account_id,
               BalanceLine.currency == currency, BalanceLine.created_at > since)
    ) or 0)
    held = select(BalanceLineReversal.id).where(BalanceLineReversal.message_id == BalanceEntry.message_id)
    granted += int(session.scalar(  # reversals count too: taking credit away is moving money
        select(func.coalesce(func.sum(BalanceEntry.amount_minor), 0))
        .join(BalanceLine, BalanceLine.id == BalanceEntry.balance_line_id)
        .where(BalanceEntry.kind == "reversed", BalanceEntry.producer == producer.name,
               BalanceLine.account_id == account_id, BalanceLine.currency == currency, BalanceEntry.created_at > since,
               ~held.exists())  # an approved held reversal counts once, below, from when it arrived
    ) or 0)
    granted += int(session.scalar(  # held reversals count as held lines do: what they asked for
        select(func.coalesce(func.sum(BalanceLineReversal.amount_minor), 0))
        .join(BalanceLine, BalanceLine.id == BalanceLineReversal.balance_line_id)
        .where(BalanceLineReversal.producer == producer.name, BalanceLineReversal.account_id == account_id,
               BalanceLine.currency == currency, BalanceLineReversal.created_at > since)
    ) or 0)
    if granted + amount > per_day:
        raise _refuse(producer, kind, "per_account_day",
                      f"{format_amount(amount, currency)} {currency} would take producer {producer.name}'s lines for "
                      f"account {account_id} in the last 24 hours to {format_amount(granted + amount, currency)}, "
                      f"above its per_account_day limit of {format_amount(per_day, currency)} {currency}")


def _percent_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _check_percent(session: Session, producer: Producer, account_id: str, percent: Decimal, now: datetime) -> bool:
    """Percent discounts have their own ceiling (``max_percent``) and approval threshold
    (``approval_above_percent``). A producer whose amounts are capped but who has no percent ceiling
    may send none: a percent must not be a way around the caps. The ceiling also bounds the sum of
    the producer's percent discounts for the account over 24 hours, so stacking them is no way either.
    """
    limits = producer.limits
    if limits.max_percent is None:
        if limits.caps_amounts:
            raise _refuse(producer, "discount", "max_percent",
                          f"producer {producer.name} has amount limits but no max_percent: it may not send "
                          "percent discounts")
        return False
    ceiling = Decimal(limits.max_percent)
    if percent > ceiling:
        raise _refuse(producer, "discount", "max_percent",
                      f"{percent}% is above producer {producer.name}'s max_percent of {ceiling}%")
    granted = sum((Decimal(value or 0) for value in session.scalars(
        select(BalanceLine.percent).where(BalanceLine.producer == producer.name,
                                          BalanceLine.account_id == account_id, BalanceLine.percent.is_not(None),
                                          BalanceLine.created_at > now - timedelta(hours=24))
    ).all()), Decimal(0))
    if granted + percent > ceiling:
        total = _percent_text(granted + percent)
        raise _refuse(producer, "discount", "max_percent",
                      f"{percent}% would take producer {producer.name}'s percent discounts for account {account_id} "
                      f"in the last 24 hours to {total}%, above its max_percent of {ceiling}%")
    threshold = limits.approval_above_percent
    if threshold is None:
        return limits.approval_above is not None  # an amount threshold and none for percents: held
    return percent > Decimal(threshold)


def check_line(
    session: Session,
    producer: Producer,
    *,
    account_id: str,
    kind: str,
    amount_minor: int | None,
    currency: str,
    now: datetime,
    percent: Decimal | None = None,
    verb: str = "create",
) -> bool:
    """Raise when the producer may not create (or reverse) this line; return True when it needs approval."""
    check_kind(producer, kind, verb)
    _check_rate(session, producer, kind, now)
    if amount_minor is None:  # a percent discount
        return _check_percent(session, producer, account_id, percent, now) if percent is not None else False
    amount = abs(amount_minor)
    per_line = producer.limits.minor("per_line", currency)
    if per_line is not None and amount > per_line:
        raise _refuse(producer, kind, "per_line",
                      f"{format_amount(amount, currency)} {currency} is above producer {producer.name}'s per_line "
                      f"limit of {format_amount(per_line, currency)} {currency}")
    _check_day(session, producer, account_id, kind, amount, currency, now)
    threshold = producer.limits.minor("approval_above", currency)
    return threshold is not None and amount > threshold
