"""The one place rows meet domain values: table rows in, billing-core dataclasses out.

The loaders read a batch of accounts (bill runs: one query per table for the whole batch); the
one-account ``open_balance_lines`` (onboarding, simulate) is the batch loader called with one id,
so both paths turn rows into domain values the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from fractions import Fraction
from typing import Any

from sqlalchemy import ColumnElement, Row, String, Table, any_, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session

from models.billing.approvals import LineStatus, line_status
from models.billing.balance import BalanceKind, OpenBalanceLine
from models.billing.calendar import Cadence, IntervalUnit
from models.billing.composition import SubscriptionTerms, Timing
from models.billing.proration import Proration
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_line_decision import BalanceLineDecision
from models.tables.subscription import Subscription

SubscriptionRow = Subscription | Row[Any]
"""A subscription as a mapped object or as a plain Core row of its table (the loaders return rows:
bill runs read hundreds at a time and never change them through the ORM)."""


def among(
    session: Session, column: ColumnElement[str] | InstrumentedAttribute[str], ids: Collection[str]
) -> ColumnElement[bool]:
    """``column`` is one of ``ids``: ``= ANY(:ids)`` on PostgreSQL, ``IN (...)`` elsewhere.

    One array parameter keeps the statement short and the same for every batch, so it is parsed
    and planned once; an IN list of 300 placeholders is a new 4 KB statement each time.
    """
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(cast(bindparam("among_ids", list(ids), type_=ARRAY(String())), ARRAY(String())))
    return column.in_(list(ids))


def subscription_terms(row: SubscriptionRow) -> SubscriptionTerms:
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


def load_subscriptions_of(session: Session, account_ids: Collection[str]) -> dict[str, list[SubscriptionRow]]:
    """The subscriptions of each account, in the order its onboarding message listed them."""
    found: dict[str, list[SubscriptionRow]] = defaultdict(list)
    if not account_ids:
        return found
    table = Subscription.__table__
    assert isinstance(table, Table)
    query = (
        select(table)
        .where(among(session, table.c.account_id, account_ids))
        .order_by(table.c.account_id, table.c.position)
    )
    for row in session.execute(query).all():
        found[row.account_id].append(row)
    return found


def _decisions(session: Session, account_ids: Collection[str]) -> dict[int, str]:
    """The last decision on each balance line of the accounts that needed one."""
    query = (
        select(BalanceLineDecision.balance_line_id, BalanceLineDecision.decision)
        .join(BalanceLine, BalanceLine.id == BalanceLineDecision.balance_line_id)
        .where(among(session, BalanceLine.account_id, account_ids), BalanceLine.requires_approval.is_(True))
        .order_by(BalanceLineDecision.id)
    )
    return {line_id: decision for line_id, decision in session.execute(query)}


def open_line(row: BalanceLine, used: int | None, entries: int) -> OpenBalanceLine | None:
    """What is left of one active line after its ledger entries; None when nothing is."""
    common: dict[str, Any] = {
        "line_id": row.line_id,
        "kind": BalanceKind(row.kind),
        "sequence": row.id,
        "effective_date": row.effective_date,
        "expires_on": row.expires_on,
    }
    if row.percent is not None:
        return None if entries else OpenBalanceLine(percent=Fraction(row.percent), **common)
    amount = row.amount_minor or 0
    left = abs(amount) - int(used or 0)
    if left <= 0:
        return None
    return OpenBalanceLine(remaining_minor=(-1 if amount < 0 else 1) * left, **common)


def open_balance_lines_of(session: Session, account_ids: Collection[str]) -> dict[str, list[OpenBalanceLine]]:
    """Each account's active balance lines that still have something to apply, oldest first.

    Entries are summed per line in the same query (grouped by the line's primary key), so only
    the entries of these accounts' lines are read.
    """
    found: dict[str, list[OpenBalanceLine]] = defaultdict(list)
    if not account_ids:
        return found
    query = (
        select(BalanceLine, func.sum(BalanceEntry.amount_minor), func.count(BalanceEntry.id))
        .outerjoin(BalanceEntry, BalanceEntry.balance_line_id == BalanceLine.id)
        .where(among(session, BalanceLine.account_id, account_ids))
        .group_by(BalanceLine.id)
        .order_by(BalanceLine.id)
    )
    rows = session.execute(query).all()
    decisions = _decisions(session, account_ids) if any(row.requires_approval for row, _, _ in rows) else {}
    for row, used, entries in rows:
        if line_status(row.requires_approval, decisions.get(row.id)) is not LineStatus.ACTIVE:
            continue
        line = open_line(row, used, int(entries))
        if line is not None:
            found[row.account_id].append(line)
    return found


def open_balance_lines(session: Session, account_id: str) -> list[OpenBalanceLine]:
    """The account's active balance lines that still have something to apply, oldest first."""
    return open_balance_lines_of(session, [account_id]).get(account_id, [])
