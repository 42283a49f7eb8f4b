"""The one place rows meet domain values: table rows in, billing-core dataclasses out."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.billing.balance import BalanceKind, OpenBalanceLine
from models.billing.calendar import Cadence, IntervalUnit
from models.billing.composition import SubscriptionTerms, Timing
from models.billing.proration import Proration
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_line_decision import BalanceLineDecision
from models.tables.subscription import Subscription


def subscription_terms(row: Subscription) -> SubscriptionTerms:
    cadence = Cadence(
        unit=IntervalUnit(row.interval),
        count=row.interval_count,
        bill_day=row.bill_day,
        bill_month=row.bill_month,
        bill_weekday=row.bill_weekday,
    )
    return SubscriptionTerms(
        key=str(row.id),
        plan=row.plan,
        amount_minor=row.amount_minor,
        cadence=cadence,
        start_date=row.start_date,
        timing=Timing(row.timing),
        proration=Proration(row.proration),
        billed_until=row.billed_until,
        position=row.position,
    )


def load_subscriptions(session: Session, account_id: str) -> Sequence[Subscription]:
    query = select(Subscription).where(Subscription.account_id == account_id).order_by(Subscription.position)
    return session.scalars(query).all()


def _decisions(session: Session, account_id: str) -> dict[int, str]:
    """The last decision on each balance line of the account that needed one."""
    query = (
        select(BalanceLineDecision.balance_line_id, BalanceLineDecision.decision)
        .join(BalanceLine, BalanceLine.id == BalanceLineDecision.balance_line_id)
        .where(BalanceLine.account_id == account_id)
        .order_by(BalanceLineDecision.id)
    )
    return {line_id: decision for line_id, decision in session.execute(query)}


def line_status(row: BalanceLine, decision: str | None) -> str:
    """active, pending_approval or declined: derived, never stored, so the ledger stays append-only."""
    if not row.requires_approval:
        return "active"
    return {"approved": "active", "declined": "declined"}.get(decision or "", "pending_approval")


def open_balance_lines(session: Session, account_id: str) -> list[OpenBalanceLine]:
    """The account's active balance lines that still have something to apply, oldest first."""
    consumed = (
        select(BalanceEntry.balance_line_id, func.sum(BalanceEntry.amount_minor).label("used"),
               func.count().label("entries"))
        .group_by(BalanceEntry.balance_line_id)
        .subquery()
    )
    query = (
        select(BalanceLine, consumed.c.used, consumed.c.entries)
        .outerjoin(consumed, consumed.c.balance_line_id == BalanceLine.id)
        .where(BalanceLine.account_id == account_id)
        .order_by(BalanceLine.id)
    )
    decisions = _decisions(session, account_id)
    lines: list[OpenBalanceLine] = []
    for row, used, entries in session.execute(query):
        if line_status(row, decisions.get(row.id)) != "active":
            continue
        common = {
            "line_id": row.line_id,
            "kind": BalanceKind(row.kind),
            "sequence": row.id,
            "effective_date": row.effective_date,
            "expires_on": row.expires_on,
        }
        if row.percent is not None:
            if not entries:
                lines.append(OpenBalanceLine(percent=Fraction(row.percent), **common))
            continue
        amount = row.amount_minor or 0
        left = abs(amount) - int(used or 0)
        if left > 0:
            sign = -1 if amount < 0 else 1
            lines.append(OpenBalanceLine(remaining_minor=sign * left, **common))
    return lines
