"""The account's life after onboarding: add, change, pause, resume, cancel, move the bill day.

Every message follows one path: lock the account (a line that arrives before its account waits,
as balance lines do), claim its ``change_id``, check the change against the subscription's price
timeline (``models.billing.timeline``: a refusal names the field), append it to
``subscription_changes`` with who asked and why, mark the billed periods it may have made wrong
(``recheck_from``), and compose the account at once: what is due now (a backdated add's catch-up,
an ``invoice_now`` settlement, a cancellation's credit) is invoiced in the same transaction; the
corrections of a plain change wait for the subscription's next invoice. The amounts are the core's
(what should be billed − what was billed), so a redelivered or overlapping message changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.orm import Session

from jobs import idempotency, parking
from jobs.bills import Lifecycle, compose_bill
from jobs.canonical import body_hash
from jobs.clock import local_date
from jobs.context import JobContext
from jobs.errors import CurrencyMismatchRejected, InvalidMessage
from jobs.invoicing import write_bills
from jobs.outcomes import Outcome
from jobs.pipeline import Received
from jobs.schemas import (
    AddSubscription,
    CancelSubscription,
    ChangeSubscription,
    LifecycleBody,
    PauseSubscription,
    ResumeSubscription,
    UpdateAccount,
)
from models.billing.calendar import IntervalUnit
from models.billing.money import parse_amount
from models.billing.schedule import Schedule
from models.billing.timeline import PriceTimeline
from models.tables.account import Account
from models.tables.locks import lock_account
from models.tables.mapping import load_billed_of, load_changes_of, open_balance_lines, schedule_of, timeline_of
from models.tables.store import table_of
from models.tables.subscription import Subscription
from models.tables.subscription_change import SubscriptionChange

ADD = "subscription.add"
CHANGE = "subscription.change"
PAUSE = "subscription.pause"
RESUME = "subscription.resume"
CANCEL = "subscription.cancel"
UPDATE = "account.update"


@dataclass
class _Account:
    """One account under its lock, with its subscriptions and their changes as stored."""

    row: Account
    today: date
    subscriptions: list[Row[Any]]
    changes: dict[int, list[Row[Any]]]

    def subscription(self, key: str) -> Row[Any]:
        found = next((row for row in self.subscriptions if row.key == key), None)
        if found is None:
            raise InvalidMessage("subscription", f"{key!r} is not a subscription of account {self.row.id}")
        return found

    def timeline(self, row: Row[Any]) -> PriceTimeline:
        return timeline_of(row, self.changes.get(row.id, []))

    def schedule(self, row: Row[Any]) -> Schedule:
        return schedule_of(row, self.changes.get(row.id, []))


def _load(session: Session, account: Account, now_date: date) -> _Account:
    table = table_of(Subscription)
    rows = list(session.execute(select(table).where(table.c.account_id == account.id)
                                .order_by(table.c.position)).all())
    return _Account(account, now_date, rows, load_changes_of(session, [row.id for row in rows]))


def _begin(ctx: JobContext, session: Session, received: Received, message_type: str,
           body: LifecycleBody) -> tuple[_Account | None, Outcome | None]:
    """Lock and load the account, or park the message, or recognise a redelivery."""
    lock_account(session, body.account)
    account = session.get(Account, body.account)
    if account is None:
        grace = timedelta(seconds=ctx.settings.unknown_account_grace_seconds)
        return None, parking.park(session, received, body.account, grace)
    if not idempotency.claim(session, f"lifecycle:{body.change_id}", message_type=message_type,
                             message_id=received.envelope.id, body_hash=body_hash(received.envelope.body),
                             now=received.now, what=f"change {body.change_id}"):
        return None, Outcome.DUPLICATE
    return _load(session, account, local_date(received.now, account.timezone)), None


def _record(session: Session, received: Received, body: LifecycleBody, message_type: str, row: Row[Any],
            kind: str, effective: date, **values: Any) -> None:
    session.execute(insert(SubscriptionChange), [{
        "subscription_id": row.id, "account_id": row.account_id, "change_id": body.change_id, "kind": kind,
        "effective": effective, "until": values.get("until"), "plan": values.get("plan"),
        "amount_minor": values.get("amount_minor"), "bill_day": values.get("bill_day"),
        "message_type": message_type, "message_id": received.envelope.id, "producer": received.envelope.producer,
        "author": body.author, "reason": body.reason, "created_at": received.now,
    }])


def _mark(session: Session, row: Row[Any], effective: date, *, settle_on: date | None = None) -> None:
    """The subscription has changed from ``effective``: recheck billed periods ending after it."""
    values: dict[str, Any] = {"has_changes": True}
    if row.billed_until is not None and effective < row.billed_until:
        values["recheck_from"] = min(effective, row.recheck_from or effective)
    if settle_on is not None:
        values["settle_on"] = min(settle_on, row.settle_on or settle_on)
    session.execute(update(Subscription).where(Subscription.id == row.id).values(**values))


def _commit_change(ctx: JobContext, session: Session, received: Received, body: LifecycleBody, message_type: str,
                   state: _Account, row: Row[Any], kind: str, effective: date, *, settle_on: date | None = None,
                   invoice_now: bool = False, **values: Any) -> Outcome:
    """Record one subscription's change, mark what it may have made wrong, and bill what is due now."""
    _record(session, received, body, message_type, row, kind, effective, **values)
    _mark(session, row, effective, settle_on=settle_on)
    _bill_now(ctx, session, received, state.row, invoice_now=invoice_now)
    return Outcome.PROCESSED


def _bill_now(ctx: JobContext, session: Session, received: Received, account: Account, *,
              catching_up: frozenset[int] = frozenset(), invoice_now: bool = False) -> None:
    """Compose the account at once and store what is due now (often nothing)."""
    today = local_date(received.now, account.timezone)
    state = _load(session, account, today)
    recheck = {row.id: row.recheck_from for row in state.subscriptions if row.recheck_from is not None}
    lifecycle = Lifecycle(changes=state.changes, billed=load_billed_of(session, recheck), catching_up=catching_up)
    bill = compose_bill(account, state.subscriptions, open_balance_lines(session, account.id), today,
                        settings=ctx.settings, lifecycle=lifecycle, invoice_now=invoice_now)
    write_bills(session, [bill], now=received.now, bill_run_id=None)


def handle_add(ctx: JobContext, session: Session, received: Received, body: AddSubscription) -> Outcome:
    """A new subscription on the account's bill day; a past start is caught up like an onboarding."""
    state, done = _begin(ctx, session, received, ADD, body)
    if state is None:
        return done or Outcome.DUPLICATE
    spec = body.subscription
    if any(row.key == spec.key for row in state.subscriptions):
        raise InvalidMessage("subscription.id", f"{spec.key!r} is already a subscription of account {state.row.id}")
    amount = spec.price_in(state.row.currency, "subscription.amount")
    start = spec.start_date or state.today
    position = 1 + max((row.position for row in state.subscriptions), default=-1)
    new_id = session.execute(insert(Subscription).returning(Subscription.id), [{
        "account_id": state.row.id, "position": position, "key": spec.key, "plan": spec.plan,
        "amount_minor": amount, "currency": state.row.currency, "interval": spec.interval,
        "interval_count": spec.interval_count, "timing": spec.timing, "proration": spec.proration,
        "bill_day": state.row.bill_day, "bill_month": spec.bill_month, "bill_weekday": spec.bill_weekday,
        "start_date": start, "billed_until": None, "next_bill_date": start, "has_changes": False,
    }]).scalar_one()
    _bill_now(ctx, session, received, state.row, catching_up=frozenset({new_id}))
    return Outcome.PROCESSED


def handle_change(ctx: JobContext, session: Session, received: Received, body: ChangeSubscription) -> Outcome:
    """From E (default today) the new price and plan apply, day by day; billed days are re-rated."""
    state, done = _begin(ctx, session, received, CHANGE, body)
    if state is None:
        return done or Outcome.DUPLICATE
    row = state.subscription(body.subscription)
    timeline = state.timeline(row)
    schedule = state.schedule(row)
    effective = body.effective_date or state.today
    if body.proration == "none":  # the current period stays as billed
        effective = schedule.next_boundary(effective)
    schedule.check_backdate(effective, state.today, ctx.settings.max_catch_up_periods)
    plan, amount = timeline.list_price_on(max(effective, timeline.start))
    if body.amount is not None:
        assert body.currency is not None
        if body.currency != state.row.currency:
            raise CurrencyMismatchRejected(f"currency {body.currency} does not match the account's "
                                           f"{state.row.currency}")
        amount = parse_amount(body.amount, body.currency, field="amount")
    plan = body.plan or plan
    timeline.changed(effective, plan, amount)  # refuses a change before the start or after the end
    return _commit_change(ctx, session, received, body, CHANGE, state, row, "change", effective,
                          settle_on=state.today if body.invoice_now else None, invoice_now=body.invoice_now,
                          plan=plan, amount_minor=amount)


def handle_pause(ctx: JobContext, session: Session, received: Received, body: PauseSubscription) -> Outcome:
    """Days in [from, until) cost nothing; anchors do not move."""
    state, done = _begin(ctx, session, received, PAUSE, body)
    if state is None:
        return done or Outcome.DUPLICATE
    row = state.subscription(body.subscription)
    starts = body.starts or state.today
    state.schedule(row).check_backdate(starts, state.today, ctx.settings.max_catch_up_periods, "from")
    state.timeline(row).paused(starts, body.until)
    return _commit_change(ctx, session, received, body, PAUSE, state, row, "pause", starts, until=body.until)


def handle_resume(ctx: JobContext, session: Session, received: Received, body: ResumeSubscription) -> Outcome:
    """The open pause ends on E (default today)."""
    state, done = _begin(ctx, session, received, RESUME, body)
    if state is None:
        return done or Outcome.DUPLICATE
    row = state.subscription(body.subscription)
    effective = body.effective_date or state.today
    state.timeline(row).resumed(effective)
    return _commit_change(ctx, session, received, body, RESUME, state, row, "resume", effective)


def handle_cancel(ctx: JobContext, session: Session, received: Received, body: CancelSubscription) -> Outcome:
    """Nothing is billed on or after the end; with proration, the unused billed days are credited at once."""
    state, done = _begin(ctx, session, received, CANCEL, body)
    if state is None:
        return done or Outcome.DUPLICATE
    row = state.subscription(body.subscription)
    schedule = state.schedule(row)
    if body.at_period_end:
        effective = schedule.period_containing(state.today).end
    else:
        effective = body.effective_date or state.today
        if body.proration == "none":
            effective = schedule.next_boundary(effective)
    schedule.check_backdate(effective, state.today, ctx.settings.max_catch_up_periods)
    state.timeline(row).ended(effective)
    return _commit_change(ctx, session, received, body, CANCEL, state, row, "cancel", effective,
                          settle_on=max(state.today, effective))


def handle_update(ctx: JobContext, session: Session, received: Received, body: UpdateAccount) -> Outcome:
    """A new bill day after each current period (a bridge stub to it), invoice grouping, or name."""
    state, done = _begin(ctx, session, received, UPDATE, body)
    if state is None:
        return done or Outcome.DUPLICATE
    values: dict[str, Any] = {}
    if body.name is not None:
        values["name"] = body.name
    if body.combine_invoices is not None:
        values["combine_invoices"] = body.combine_invoices
    if body.bill_day is not None and body.bill_day != state.row.bill_day:
        values["bill_day"] = body.bill_day
        for row in state.subscriptions:
            if row.interval == IntervalUnit.WEEK or row.next_bill_date is None:
                continue  # week periods keep their weekday; an ended subscription has no periods left
            changes = state.changes.get(row.id, [])
            schedule_of(row, changes).with_bill_day(body.bill_day, state.today)  # checks the new schedule
            _record(session, received, body, UPDATE, row, "bill_day", state.today, bill_day=body.bill_day)
            session.execute(update(Subscription).where(Subscription.id == row.id).values(has_changes=True))
    if values:
        session.execute(update(Account).where(Account.id == state.row.id).values(**values))
        session.expire(state.row)
    _bill_now(ctx, session, received, state.row)
    return Outcome.PROCESSED
