"""The one place rows meet domain values: table rows in, billing-core dataclasses out.

The loaders read a batch of accounts (bill runs: one query per table for the whole batch); the
one-account ``open_balance_lines`` (onboarding, simulate) is the batch loader called with one id,
so both paths turn rows into domain values the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import date, timedelta
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
from models.billing.rating import BilledRange
from models.billing.schedule import Schedule
from models.billing.timeline import Cancellation, LifecycleEvent, Pause, PriceChange, PriceTimeline, Resume
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_line_decision import BalanceLineDecision
from models.tables.invoice_line import CHARGE_KINDS, InvoiceLine
from models.tables.subscription import Subscription
from models.tables.subscription_change import SubscriptionChange

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


def cadence_of(row: SubscriptionRow) -> Cadence:
    """The cadence a subscription started on (bill-day moves are segments of its schedule)."""
    return Cadence(
        unit=IntervalUnit(row.interval),
        count=row.interval_count,
        bill_day=row.bill_day,
        bill_month=row.bill_month,
        bill_weekday=row.bill_weekday,
    )


ChangeRow = SubscriptionChange | Row[Any]


def lifecycle_event(change: ChangeRow) -> LifecycleEvent | None:
    """A stored change as the price timeline replays it (a bill-day move is not a price event)."""
    if change.kind == "change":
        assert change.plan is not None and change.amount_minor is not None  # stored resolved
        return PriceChange(change.effective, change.plan, change.amount_minor)
    if change.kind == "pause":
        return Pause(change.effective, change.until)
    if change.kind == "resume":
        return Resume(change.effective)
    if change.kind == "cancel":
        return Cancellation(change.effective)
    return None


def timeline_of(row: SubscriptionRow, changes: Sequence[ChangeRow]) -> PriceTimeline:
    events = [event for event in map(lifecycle_event, changes) if event is not None]
    return PriceTimeline.replay(row.start_date, row.plan, row.amount_minor, events)


def schedule_of(row: SubscriptionRow, changes: Sequence[ChangeRow]) -> Schedule:
    schedule = Schedule.single(row.start_date, cadence_of(row))
    for change in changes:
        if change.kind == "bill_day" and change.bill_day is not None:
            schedule = schedule.with_bill_day(change.bill_day, change.effective)
    return schedule


def subscription_terms(
    row: SubscriptionRow, changes: Sequence[ChangeRow] = (), billed: Sequence[BilledRange] = (), *,
    catching_up: bool = False, settle: bool = True,
) -> SubscriptionTerms:
    """The core's view of a stored subscription: its price timeline and schedule when it has changed,
    the billed ranges to recheck, and when its pending corrections must be settled."""
    changed = bool(getattr(row, "has_changes", False)) or bool(changes)
    return SubscriptionTerms(
        key=str(row.id),
        plan=row.plan,
        amount_minor=row.amount_minor,
        cadence=cadence_of(row),
        start_date=row.start_date,
        timing=Timing(row.timing),
        proration=Proration(row.proration),
        billed_until=row.billed_until,
        position=row.position,
        timeline=timeline_of(row, changes) if changed else None,
        schedule=schedule_of(row, changes) if any(c.kind == "bill_day" for c in changes) else None,
        billed=tuple(billed),
        settle_on=getattr(row, "settle_on", None) if settle else None,
        catching_up=catching_up,
        recheck_from=getattr(row, "recheck_from", None),
    )


def load_changes_of(session: Session, subscription_ids: Collection[int]) -> dict[int, list[Row[Any]]]:
    """The changes of each subscription, in arrival order (one query for a whole batch)."""
    found: dict[int, list[Row[Any]]] = defaultdict(list)
    if not subscription_ids:
        return found
    table = SubscriptionChange.__table__
    assert isinstance(table, Table)
    query = select(table).where(table.c.subscription_id.in_(list(subscription_ids))).order_by(table.c.id)
    for row in session.execute(query).all():
        found[row.subscription_id].append(row)
    return found


def load_billed_of(session: Session, recheck: Mapping[int, date]) -> dict[int, list[BilledRange]]:
    """What the periods ending after each subscription's ``recheck_from`` were billed, line by line."""
    found: dict[int, list[BilledRange]] = defaultdict(list)
    if not recheck:
        return found
    table = InvoiceLine.__table__
    assert isinstance(table, Table)
    query = (
        select(table.c.subscription_id, table.c.billing_period_start, table.c.billing_period_end,
               table.c.period_days, table.c.period_start, table.c.period_end, table.c.plan, table.c.rate_minor)
        .where(table.c.subscription_id.in_(list(recheck)), table.c.kind.in_(CHARGE_KINDS),
               table.c.billing_period_end >= min(recheck.values()))
        .order_by(table.c.id)
    )
    day = timedelta(days=1)
    for row in session.execute(query).all():
        if row.billing_period_end < recheck[row.subscription_id]:
            continue  # a period that ended before the earliest change: it stands as billed
        found[row.subscription_id].append(BilledRange(
            period_start=row.billing_period_start, period_end=row.billing_period_end + day,
            period_days=row.period_days, start=row.period_start, end=row.period_end + day, plan=row.plan,
            rate_minor=row.rate_minor,
        ))
    return found


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
