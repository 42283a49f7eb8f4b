"""``account.onboard``: create the account and its subscriptions, then bill the catch-up at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, exists, insert, select
from sqlalchemy.orm import Session

from jobs import headroom, idempotency, ledger, parking
from jobs.after_commit import on_commit
from jobs.bills import compose_bill
from jobs.canonical import body_hash
from jobs.clock import local_date
from jobs.context import JobContext
from jobs.errors import Conflict
from jobs.invoicing import write_bills
from jobs.outcomes import Outcome
from jobs.pipeline import Received
from jobs.schemas import OnboardAccount
from models.billing.balance import OpenBalanceLine
from models.tables import bulk
from models.tables.account import Account
from models.tables.mapping import open_balance_lines
from models.tables.parked_message import ParkedMessage
from models.tables.prepared import Prepared
from models.tables.store import table_of
from models.tables.subscription import Subscription

MESSAGE_TYPE = "account.onboard"

_ACCOUNTS = table_of(Account)
_SUBSCRIPTIONS = table_of(Subscription)


def _account_insert() -> Prepared:
    """The account's row, returning whether messages wait for it (parked before it existed).

    The account lock is held by then, so every line that parked for it has committed: a line that
    comes later waits for the lock and finds the account.
    """
    values = {column.name: bindparam(column.name, type_=column.type) for column in _ACCOUNTS.columns}
    waiting = exists().where(ParkedMessage.account_id == values["id"])
    return Prepared(insert(_ACCOUNTS).values(values).returning(select(waiting).scalar_subquery()))


_INSERT_ACCOUNT = _account_insert()


def handle_onboard_account(ctx: JobContext, session: Session, received: Received, body: OnboardAccount) -> Outcome:
    """Create the account and its subscriptions and bill the catch-up, in about a dozen statements.

    Rows are written with Core statements (the ORM's unit of work cost more than the rest of the
    message here); the ORM objects built alongside are only handed to the composer, never flushed.
    """
    settings = ctx.settings
    info = body.account
    digest = onboarding_hash(body)
    if not _claim(session, received, info.id, digest):  # under the account's lock from here on
        return Outcome.DUPLICATE
    today = local_date(received.now, info.timezone)
    headroom.check_onboarding([spec.amount_minor for spec in body.subscriptions],
                              [line.amount_minor for line in body.balance_lines],
                              catch_up_periods=settings.max_catch_up_periods)
    account = Account(
        id=info.id, name=info.name, currency=info.currency, timezone=info.timezone,
        bill_day=body.effective_bill_day, combine_invoices=body.combine_invoices,
        start_date=body.start_date, onboarded_on=today, hold_until=None, body_hash=digest,
        created_at=received.now,
    )
    [(waiting,)] = _INSERT_ACCOUNT.rows(session, _columns(account))
    subscriptions = _insert_subscriptions(session, body)
    balance: list[OpenBalanceLine] = []
    if body.balance_lines:
        raw_lines: list[Any] = list(received.envelope.body.get("balance_lines") or [])
        ledger.grant_embedded(ctx, session, account, received, body.balance_lines, raw_lines, today)  # producer limits
        balance = open_balance_lines(session, info.id)
    bill = compose_bill(account, subscriptions, balance, today, settings=settings, onboarding=True)
    write_bills(session, [bill], now=received.now, bill_run_id=None)
    if waiting:
        on_commit(session, lambda: _resume_parked(ctx, info.id))
    return Outcome.PROCESSED


def onboarding_hash(body: OnboardAccount) -> str:
    """The hash of what the onboarding means, not of how it was written: the parsed body with every
    default filled in, so ``"combine_invoices": null`` or a default written out is the same onboarding."""
    return body_hash(body.model_dump(mode="json"))


def _claim(session: Session, received: Received, account_id: str, digest: str) -> bool:
    """Take the account's lock and claim the onboarding's key; an onboarding recorded under the hash
    of its raw body (before bodies were hashed by meaning) is still recognised as the same."""
    key = f"{MESSAGE_TYPE}:{account_id}"
    try:
        return idempotency.claim(session, key, message_type=MESSAGE_TYPE, message_id=received.envelope.id,
                                 body_hash=digest, now=received.now, what=f"the onboarding of account {account_id}",
                                 account_lock=account_id)
    except Conflict:
        if idempotency.recorded_hash(session, key) == body_hash(received.envelope.body):
            return False
        raise


def _resume_parked(ctx: JobContext, account_id: str) -> None:
    """Re-send the lines that arrived before their account (after the onboarding committed)."""
    parking.resume(ctx, account_id)


def _columns(row: Account | Subscription) -> dict[str, Any]:
    """The row's values by column, leaving out a generated key that has no value yet."""
    table = row.__table__
    assert isinstance(table, Table)
    return {column.name: getattr(row, column.key) for column in table.columns
            if not (column.primary_key and getattr(row, column.key) is None)}


def _insert_subscriptions(session: Session, body: OnboardAccount) -> list[Subscription]:
    """The account's subscriptions, inserted in one statement, as (unattached) rows with their ids."""
    info = body.account
    rows = [
        Subscription(
            account_id=info.id, position=position, key=spec.key, plan=spec.plan, amount_minor=spec.amount_minor,
            currency=info.currency, interval=spec.interval, interval_count=spec.interval_count,
            timing=spec.timing, proration=spec.proration, bill_day=body.effective_bill_day,
            bill_month=spec.bill_month, bill_weekday=spec.bill_weekday, start_date=body.start_date,
            billed_until=None, next_bill_date=body.start_date, has_changes=False, recheck_from=None, settle_on=None,
        )
        for position, spec in enumerate(body.subscriptions)
    ]
    ids = bulk.insert_rows(session, _SUBSCRIPTIONS, [_columns(row) for row in rows], return_ids=True)
    for row, row_id in zip(rows, ids, strict=True):
        row.id = row_id
    return rows
