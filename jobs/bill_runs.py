"""Bill runs: level-triggered, fanned out in batches, each invoice exactly once.

A trigger ("bill everything due up to D") records a run and enqueues batches of account ids found
through the indexed ``next_bill_date``. A batch bills its accounts in ONE transaction, each
inside a savepoint so a failing account is isolated and recorded while the others commit. An
account another worker holds is skipped (the next run picks it up); unique keys on
(subscription, period start) make overlapping runs harmless. A late or missed trigger loses
nothing: the next one bills every period that fell due meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import dramatiq
import structlog
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

import worker.broker  # noqa: F401 - installs the broker before the actors below are declared
from jobs import runtime
from jobs.errors import InvalidMessage
from jobs.invoicing import bill_account
from jobs.receiving import Received, receive
from jobs.schemas import TriggerBillRun
from models.billing.errors import BillingError
from models.tables.account import Account
from models.tables.bill_run import BillRun, BillRunFailure
from models.tables.subscription import Subscription
from worker import clock
from worker.clock import local_date
from worker.db import is_postgres, transaction
from worker.settings import get_settings

log = structlog.get_logger(__name__)

TRIGGER = "bill_run.trigger"
LATEST_LOCAL_OFFSET = timedelta(hours=14)
"""No time zone is ahead of UTC by more than 14 hours: the widest "today" a run can meet."""


def due_account_ids(session: Session, up_to: date, batch_size: int) -> Iterator[list[str]]:
    """Accounts with a subscription due on or before ``up_to``, in keyset-paginated batches."""
    after = ""
    while True:
        batch = list(session.scalars(
            select(Subscription.account_id)
            .where(Subscription.next_bill_date <= up_to, Subscription.account_id > after)
            .group_by(Subscription.account_id)
            .order_by(Subscription.account_id)
            .limit(batch_size)
        ))
        if not batch:
            return
        yield batch
        after = batch[-1]


def handle_trigger(session: Session, received: Received, body: TriggerBillRun) -> str:
    """Record the run; the fan-out happens after commit (see ``trigger_bill_run``)."""
    latest = (received.now + LATEST_LOCAL_OFFSET).date()
    if body.date is not None and body.date > latest:
        raise InvalidMessage("date", f"{body.date} is later than today in every time zone: a run never bills ahead")
    run = BillRun(run_date=body.date, message_id=received.envelope.id, requested_at=received.now,
                  started_at=received.now, status="running")
    session.add(run)
    return "processed"


def fan_out(sessions: sessionmaker[Session], broker: dramatiq.Broker, run_id: int, run_date: date | None,
            now: datetime, batch_size: int) -> int:
    """Enqueue one ``bill_accounts`` message per batch of due accounts; return how many accounts."""
    up_to = min(run_date, (now + LATEST_LOCAL_OFFSET).date()) if run_date else (now + LATEST_LOCAL_OFFSET).date()
    total = 0
    with transaction(sessions) as session:
        for batch in due_account_ids(session, up_to, batch_size):
            total += len(batch)
            broker.enqueue(bill_accounts.message(run_id, batch, run_date.isoformat() if run_date else None))
        session.execute(update(BillRun).where(BillRun.id == run_id).values(accounts_due=total))
        if total == 0:
            session.execute(update(BillRun).where(BillRun.id == run_id)
                            .values(status="finished", finished_at=now))
    log.info("bill_run_fanned_out", run_id=run_id, accounts=total)
    return total


def _try_lock(session: Session, account_id: str) -> bool:
    if not is_postgres(session):
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(hashtextextended(:id, 0))"),
                               {"id": account_id}))


def bill_batch(session: Session, run_id: int, account_ids: Sequence[str], run_date: date | None,
               now: datetime) -> tuple[int, int, int]:
    """Bill each account in its own savepoint; return (invoiced, skipped, failed) account counts."""
    settings = runtime.get().settings
    invoiced = skipped = failed = 0
    accounts = {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(account_ids)))}
    for account_id in account_ids:
        account = accounts.get(account_id)
        if account is None or not _try_lock(session, account_id):
            skipped += 1
            continue
        today = local_date(now, account.timezone)
        as_of = min(run_date, today) if run_date else today
        try:
            with session.begin_nested():
                issued = bill_account(session, account, as_of, settings=settings, now=now, bill_run_id=run_id)
        except BillingError as exc:
            failed += 1
            session.add(BillRunFailure(bill_run_id=run_id, account_id=account_id, code=exc.code,
                                       reason=str(exc), created_at=now))
            log.warning("bill_run_account_failed", run_id=run_id, account_id=account_id, reason=str(exc))
            continue
        except Exception as exc:
            failed += 1
            session.add(BillRunFailure(bill_run_id=run_id, account_id=account_id, code="error",
                                       reason=f"{type(exc).__name__}: {exc}"[:2000], created_at=now))
            log.exception("bill_run_account_error", run_id=run_id, account_id=account_id)
            continue
        if issued:
            invoiced += 1
        else:
            skipped += 1
    _count(session, run_id, invoiced, skipped, failed, now)
    return invoiced, skipped, failed


def _count(session: Session, run_id: int, invoiced: int, skipped: int, failed: int, now: datetime) -> None:
    run = BillRun.__table__.c
    session.execute(
        update(BillRun).where(BillRun.id == run_id).values(
            invoiced=run.invoiced + invoiced, skipped=run.skipped + skipped, failed=run.failed + failed,
        )
    )
    session.execute(
        update(BillRun)
        .where(BillRun.id == run_id, run.status == "running",
               run.invoiced + run.skipped + run.failed >= run.accounts_due)
        .values(status="finished", finished_at=now)
    )


@dramatiq.actor(actor_name="invoicing.trigger_bill_run", queue_name="invoicing",
                max_retries=get_settings().max_retries)
def trigger_bill_run(envelope: Any) -> None:
    if receive(TRIGGER, envelope, handle_trigger) != "processed" or not isinstance(envelope, dict):
        return
    rt = runtime.get()
    with transaction(rt.sessions) as session:
        run_id = session.scalar(select(BillRun.id).where(BillRun.message_id == envelope.get("id")))
    if run_id is not None:
        raw_date = (envelope.get("body") or {}).get("date")
        fan_out(rt.sessions, trigger_bill_run.broker, run_id, date.fromisoformat(raw_date) if raw_date else None,
                clock.current().now(), rt.settings.bill_run_batch_size)


@dramatiq.actor(actor_name="invoicing.bill_accounts", queue_name="invoicing",
                max_retries=get_settings().max_retries)
def bill_accounts(run_id: int, account_ids: list[str], run_date: str | None) -> None:
    """One batch of a bill run (an internal message: ids only, produced by ``fan_out``)."""
    rt = runtime.get()
    with transaction(rt.sessions) as session:
        bill_batch(session, run_id, account_ids, date.fromisoformat(run_date) if run_date else None,
                   clock.current().now())
