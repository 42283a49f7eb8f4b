"""When can something next happen: the next whole hour at which an hourly tick could change anything.

``billing simulate`` runs the scheduler's hour (a bill-run trigger, a sweep of parked messages,
the scenario's messages of that hour, the relay) on a test clock. Most hours of a long scenario
do nothing: no account reaches a new local date with a period due, no parked message runs out of
grace, no message arrives. ``next_tick`` finds the next hour that can, so the simulation jumps
there instead of ticking through the idle ones.

Each source reads the database and returns the earliest instant at which it may act; the hour
that acts on an instant ``x`` is the first whole hour at or after ``x``. What the caller knows and
the database does not (its scenario's next message, a broker message held for a retry) comes in
as ``known``. A source whose instant is already past (an account that is due but was not billed,
say) wakes the very next hour, as the hourly tick would have. A new kind of work that comes due
by itself (a scheduled subscription change, say) adds its own source to ``SOURCES``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from jobs.due import LATEST_LOCAL_OFFSET, zone_todays
from models.tables.account import Account
from models.tables.balance_line import BalanceLine
from models.tables.parked_message import ParkedMessage
from models.tables.store import table_of
from models.tables.subscription import Subscription

HOUR = timedelta(hours=1)
EARLIEST_LOCAL_OFFSET = timedelta(hours=-12)
"""No time zone is behind UTC by more than 12 hours."""
DST_SLACK = timedelta(hours=3)
"""More than any daylight-saving or historical shift that moves a local midnight (2 h at most)."""

Source = Callable[[Session, datetime], Iterable[datetime]]
"""Given the session and the hour just run, instants at which something may next happen."""

# The sources' statements, built once and on the tables (Core: the same SQL without the ORM's
# per-execution work): the simulation asks them after every hour it runs, and building a
# statement costs SQLAlchemy about as much as running it on SQLite.
_ACCOUNTS, _SUBSCRIPTIONS = table_of(Account), table_of(Subscription)
_LINES, _PARKED_MESSAGES = table_of(BalanceLine), table_of(ParkedMessage)
_EARLIEST_BILL_DATES = select(_ACCOUNTS.c.timezone, func.min(_SUBSCRIPTIONS.c.next_bill_date)).join(
    _SUBSCRIPTIONS, _SUBSCRIPTIONS.c.account_id == _ACCOUNTS.c.id
).where(_SUBSCRIPTIONS.c.next_bill_date.is_not(None)).group_by(_ACCOUNTS.c.timezone)
_HOLDS = select(_ACCOUNTS.c.timezone, _ACCOUNTS.c.hold_until).where(_ACCOUNTS.c.hold_until.is_not(None)).distinct()
_EXPIRIES = select(_ACCOUNTS.c.timezone, _LINES.c.expires_on).join(
    _LINES, _LINES.c.account_id == _ACCOUNTS.c.id
).where(_LINES.c.expires_on >= bindparam("from_day")).distinct()
_PARKED = select(func.min(_PARKED_MESSAGES.c.retry_at), func.count(_ACCOUNTS.c.id)).select_from(
    _PARKED_MESSAGES).outerjoin(_ACCOUNTS, _ACCOUNTS.c.id == _PARKED_MESSAGES.c.account_id)
"""The earliest end of grace, and how many parked messages have their account already."""


def whole_hour_at_or_after(instant: datetime) -> datetime:
    floor = instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == instant else floor + HOUR


def first_hour_of_local_date(zone: str, day: date, after: datetime) -> datetime:
    """The first whole hour after ``after`` at which ``zone``'s local date is ``day`` or later.

    "Local date" is the bill run's own (``jobs.due.zone_todays``), so a zone the time zone
    database does not know counts as UTC+14, as there. The answer is searched hour by hour from
    the earliest hour any zone can reach ``day`` (about 30 conversions), not computed from an
    offset: a daylight-saving change at midnight (a day that starts at 01:00, or an hour repeated
    across midnight) and offsets of +14, -12 or a quarter hour all come out right.
    """
    midnight = datetime.combine(day, time(), UTC)
    hour = max(after + HOUR, whole_hour_at_or_after(midnight - LATEST_LOCAL_OFFSET))
    last = midnight - EARLIEST_LOCAL_OFFSET + DST_SLACK
    while hour < last and zone_todays([zone], hour, None)[zone] < day:
        hour += HOUR
    return hour


def periods_due(session: Session, after: datetime) -> Iterable[datetime]:
    """Each zone's earliest ``next_bill_date``: a bill run bills an account from the first hour its
    local date reaches its earliest subscription's next bill date (``jobs.due``).

    A date already reached (an account that is due and was not billed, because composing it
    failed) wakes the next hour, as the hourly tick would retry it.
    """
    for zone, day in session.execute(_EARLIEST_BILL_DATES):
        if day is not None:
            yield first_hour_of_local_date(zone, day, after)


def holds_lifted(session: Session, after: datetime) -> Iterable[datetime]:
    """Separate-invoice catch-up held until a date (``Account.hold_until``) is released by the first
    bill run on that date. (The composer also stores ``next_bill_date`` no earlier than the hold, so
    ``periods_due`` wakes then too; this source does not rely on it.)"""
    return _dates_ahead(session.execute(_HOLDS), after)


def credit_expiries(session: Session, after: datetime) -> Iterable[datetime]:
    """The day after a credit's ``expires_on``, in its account's zone: what is left lapses from then.

    A lapse is written only by the account's next invoice, which ``periods_due`` wakes for; this
    source keeps the hour at which a credit stops counting in the simulation's path all the same.
    """
    earliest_today = (after + EARLIEST_LOCAL_OFFSET).date()
    rows = session.execute(_EXPIRIES, {"from_day": earliest_today - timedelta(days=1)})
    return _dates_ahead(((zone, day + timedelta(days=1)) for zone, day in rows if day is not None), after)


def _dates_ahead(rows: Iterable[tuple[str, date]], after: datetime) -> Iterator[datetime]:
    """The first hour of each (zone, local date) that ``after`` has not reached yet."""
    for zone, day in rows:
        if zone_todays([zone], after, None)[zone] < day:
            yield first_hour_of_local_date(zone, day, after)


def parked_messages(session: Session, after: datetime) -> Iterable[datetime]:
    """A parked message's end of grace (``jobs.parking.sweep`` rejects it from then), or the next
    hour when its account exists already (the sweep re-sends it)."""
    retry_at, ready = session.execute(_PARKED).one()
    if retry_at is not None:
        yield retry_at if retry_at.tzinfo else retry_at.replace(tzinfo=UTC)
    if ready:
        yield after


SOURCES: tuple[Source, ...] = (periods_due, holds_lifted, credit_expiries, parked_messages)


def next_tick(
    session: Session,
    after: datetime,
    known: Iterable[datetime] = (),
    sources: Sequence[Source] = SOURCES,
) -> datetime | None:
    """The next whole hour after ``after`` at which something can happen, or None if nothing ever can.

    ``after`` is the hour just run (a whole hour, UTC); ``known`` holds the caller's own instants.
    """
    instants = [*known, *(instant for source in sources for instant in source(session, after))]
    if not instants:
        return None
    return max(after + HOUR, min(whole_hour_at_or_after(instant) for instant in instants))
