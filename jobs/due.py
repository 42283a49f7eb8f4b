"""Which accounts a bill run enqueues: those due on their own local date, in keyset pages.

A run first finds the time zones of the accounts that could be due anywhere (next bill date on
or before the widest "today", UTC+14), works out each zone's local today (capped by the run's
date), and then walks ``ix_subscriptions_next_bill_date`` once, in (next_bill_date, account_id)
order, keeping a row only when its date is on or before its own zone's today. One range scan
serves every zone, and an account that is not yet due locally is neither enqueued nor counted.
Each account is listed once, at its earliest subscription (a NOT EXISTS probe on the account's
other subscriptions), so a multi-plan account never lands in two batches of one run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfoNotFoundError

import structlog
from sqlalchemy import Exists, Select, bindparam, case, select, tuple_
from sqlalchemy.orm import Session

from jobs.clock import local_date
from models.tables.account import Account
from models.tables.store import table_of
from models.tables.subscription import Subscription

log = structlog.get_logger(__name__)

LATEST_LOCAL_OFFSET = timedelta(hours=14)
"""No time zone is ahead of UTC by more than 14 hours: the widest "today" a run can meet."""

Cursor = tuple[date, str]
"""Where a page ended: (next_bill_date, account_id) of its last row."""


def widest_today(now: datetime, run_date: date | None = None) -> date:
    """The latest date any account can be on at ``now``, capped by the run's date."""
    latest = (now + LATEST_LOCAL_OFFSET).date()
    return min(run_date, latest) if run_date else latest


ACCOUNTS = table_of(Account)
SUBSCRIPTIONS = table_of(Subscription)
"""The statements here are Core ones on the tables (the same SQL as through the mapped classes,
without the ORM's per-execution work: they run in every bill run, and the simulation runs one
an hour)."""

_DUE_TIME_ZONES = (
    select(ACCOUNTS.c.timezone)
    .join(SUBSCRIPTIONS, SUBSCRIPTIONS.c.account_id == ACCOUNTS.c.id)
    .where(SUBSCRIPTIONS.c.next_bill_date <= bindparam("up_to"))
    .distinct()
)


def due_time_zones(session: Session, up_to: date) -> list[str]:
    """The distinct time zones of accounts with a subscription due on or before ``up_to``
    (one statement built once: every bill run asks it first)."""
    return sorted(session.scalars(_DUE_TIME_ZONES, {"up_to": up_to}))


def zone_todays(zones: Iterable[str], now: datetime, run_date: date | None) -> dict[str, date]:
    """Each zone's local today at ``now``, capped by the run's date.

    A zone the time zone database does not know keeps the widest bound: its accounts are
    enqueued, and the batch records each of them as a failure that names the zone.
    """
    todays: dict[str, date] = {}
    for zone in zones:
        try:
            today = local_date(now, zone)
        except (ZoneInfoNotFoundError, ValueError):
            log.error("bill_run_unknown_time_zone", timezone=zone)
            today = widest_today(now)
        todays[zone] = min(today, run_date) if run_date else today
    return todays


def _first_of_account() -> Exists:
    """The probe that keeps a row only at its account's earliest subscription (correlated to the
    outer ``subscriptions``). It never changes, and building it (an aliased entity adapting its
    columns) cost more than the rest of the page query together: it is built once, at import."""
    subscription, earlier = SUBSCRIPTIONS.c, SUBSCRIPTIONS.alias().c
    return (
        select(earlier.id)
        .where(
            earlier.account_id == subscription.account_id,
            tuple_(earlier.next_bill_date, earlier.id) < tuple_(subscription.next_bill_date, subscription.id),
        )
        .exists()
    )


FIRST_OF_ACCOUNT = _first_of_account()


def due_page_query(todays: Mapping[str, date], after: Cursor | None, limit: int) -> Select[date | None, str]:
    """One keyset page of due accounts, in index order."""
    subscription = SUBSCRIPTIONS.c
    local_today = case(dict(todays), value=ACCOUNTS.c.timezone, else_=None)
    first_of_account = FIRST_OF_ACCOUNT
    query = (
        select(subscription.next_bill_date, subscription.account_id)
        .join(ACCOUNTS, ACCOUNTS.c.id == subscription.account_id)
        .where(
            subscription.next_bill_date <= max(todays.values()),
            subscription.next_bill_date <= local_today,
            ~first_of_account,
        )
        .order_by(subscription.next_bill_date, subscription.account_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(subscription.next_bill_date, subscription.account_id) > tuple_(*after))
    return query


def due_pages(session: Session, todays: Mapping[str, date], page_size: int) -> Iterator[list[str]]:
    """Account ids due on their local today, ``page_size`` at a time, each account once."""
    if not todays:
        return
    after: Cursor | None = None
    while True:
        rows = session.execute(due_page_query(todays, after, page_size)).all()
        if not rows:
            return
        yield [account_id for _, account_id in rows]
        if len(rows) < page_size:  # a short page is the last one: no query for the empty page after it
            return
        last_date, last_account = rows[-1]
        assert last_date is not None  # the range condition excludes NULL dates
        after = (last_date, last_account)
