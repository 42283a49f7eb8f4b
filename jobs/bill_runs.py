"""Bill runs: level-triggered, fanned out in batches, each invoice exactly once.

A trigger ("bill everything due up to D") records a run and enqueues batches of the accounts that
are due on their own local date (``jobs.due``). A batch bills its accounts in ONE transaction
with a fixed number of bulk statements (``jobs.invoicing.write_bills``): it try-locks its
accounts (an account another run holds is skipped; the next run picks it up), loads them with
one query per table, composes each with the pure core (an account that fails there is isolated
and recorded), and writes the rest in bulk. Should the bulk write fail, the batch is rolled back
and billed again with one savepoint per account, so every other account still commits. Unique
keys on (subscription, period start) make overlapping runs harmless, and a late or missed trigger
loses nothing: the next one bills every period that fell due meanwhile.

Message names: the issue's ``bill_run.trigger`` is the producer-facing type, consumed by the actor
``invoicing.trigger_bill_run``; its internal batches (``bill_run.accounts`` in the issue) are
the ``invoicing.bill_accounts`` actor's messages, produced only by ``fan_out``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import dramatiq
import structlog
from dramatiq.middleware import CurrentMessage
from sqlalchemy import case, insert, literal, select, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

import worker.broker  # noqa: F401 - installs the broker before the actors below are declared
from jobs import runtime
from jobs.due import due_pages, due_time_zones, widest_today, zone_todays
from jobs.errors import InvalidMessage
from jobs.invoicing import AccountBill, IssuedInvoice, compose_bill, write_bills
from jobs.receiving import Received, receive
from jobs.schemas import TriggerBillRun
from models.billing.errors import BillingError
from models.tables.account import Account
from models.tables.bill_run import BillRun, BillRunFailure
from models.tables.mapping import among, load_subscriptions_of, open_balance_lines_of
from models.tables.processed_message import ProcessedMessage
from worker import clock
from worker.clock import local_date
from worker.db import is_postgres, transaction
from worker.metrics import BILL_RUN_FAILED_ACCOUNTS, BILL_RUN_LAST_FINISHED, BILL_RUN_SECONDS, BILL_RUNS
from worker.settings import get_settings

log = structlog.get_logger(__name__)

TRIGGER = "bill_run.trigger"
BATCH = "bill_run.accounts"
REASON_LIMIT = 2000

TRY_LOCK = text(
    "SELECT id FROM unnest(CAST(:ids AS text[])) AS id WHERE pg_try_advisory_xact_lock(hashtextextended(id, 0))"
)
"""The same per-account key as ``worker.db.lock_account``, without waiting: held ids come back."""


@dataclass(frozen=True)
class BatchOutcome:
    """Accounts of one batch: invoiced, skipped (another run holds or already billed them), failed."""

    invoiced: int
    skipped: int
    failed: int


def handle_trigger(session: Session, received: Received, body: TriggerBillRun) -> str:
    """Record the run; the fan-out happens after commit (see ``start_run``).

    A redelivered trigger whose run exists is a duplicate, unless its fan-out failed: then the
    retry starts a fresh run.
    """
    if body.date is not None and body.date > widest_today(received.now):
        raise InvalidMessage("date", f"{body.date} is later than today in every time zone: a run never bills ahead")
    earlier = session.scalar(select(BillRun.status).where(BillRun.message_id == received.envelope.id)
                             .order_by(BillRun.id.desc()).limit(1))
    if earlier is not None and earlier != "failed":
        return "duplicate"
    session.add(BillRun(run_date=body.date, message_id=received.envelope.id, requested_at=received.now,
                        started_at=received.now, status="running"))
    return "processed"


def fan_out(sessions: sessionmaker[Session], broker: dramatiq.Broker, run_id: int, run_date: date | None,
            now: datetime, batch_size: int) -> int:
    """Enqueue one ``bill_accounts`` message per page of due accounts; return how many accounts.

    ``accounts_due`` stays 0 until every page is enqueued, so a batch that finishes early
    cannot close the run; whichever of the fan-out and the last batch comes second closes it.
    """
    total = 0
    try:
        with transaction(sessions) as session:
            todays = zone_todays(due_time_zones(session, widest_today(now, run_date)), now, run_date)
            for page in due_pages(session, todays, batch_size):
                broker.enqueue(bill_accounts.message(run_id, page, run_date.isoformat() if run_date else None))
                total += len(page)
        with transaction(sessions) as session:
            _close_fanned_out(session, run_id, total)
    except Exception:
        log.exception("bill_run_fan_out_failed", run_id=run_id, enqueued=total)
        BILL_RUNS.labels(outcome="failed").inc()
        with transaction(sessions) as session:
            session.execute(update(BillRun).where(BillRun.id == run_id, BillRun.status == "running")
                            .values(status="failed", finished_at=clock.current().now(), accounts_due=total))
        raise
    log.info("bill_run_fanned_out", run_id=run_id, accounts=total, time_zones=len(todays))
    return total


def start_run(envelope: Any, broker: dramatiq.Broker) -> int | None:
    """Receive a trigger and fan its run out on ``broker``; the run's id, or None if there is none."""
    if receive(TRIGGER, envelope, handle_trigger) != "processed" or not isinstance(envelope, dict):
        return None
    rt = runtime.get()
    with transaction(rt.sessions) as session:
        run = session.execute(select(BillRun.id, BillRun.run_date, BillRun.started_at)
                              .where(BillRun.message_id == envelope.get("id"), BillRun.status == "running")
                              .order_by(BillRun.id.desc()).limit(1)).one_or_none()
    if run is None:
        return None
    fan_out(rt.sessions, broker, run.id, run.run_date, run.started_at, rt.settings.bill_run_batch_size)
    return int(run.id)


def lock_accounts(session: Session, account_ids: Sequence[str]) -> list[str]:
    """Try-lock the accounts for this transaction; return those this batch now holds.

    Advisory locks take a slot of PostgreSQL's shared lock table each: batch size x concurrent
    batches must stay below max_locks_per_transaction x max_connections (64 x 100 by default).
    SQLite serialises write transactions already: every account is held.
    """
    if not is_postgres(session):
        return list(account_ids)
    return list(session.scalars(TRY_LOCK, {"ids": list(account_ids)}))


def claim_batch(session: Session, batch_key: str | None, account_ids: Sequence[str], now: datetime) -> bool:
    """Record a batch message as applied, in the batch's own transaction; False when it already was.

    A redelivered batch (a worker killed between commit and ack) then changes no counter. Two
    copies running at once collide on the key's primary key: the second fails and is retried.
    """
    if batch_key is None:
        return True
    if session.get(ProcessedMessage, batch_key) is not None:
        return False
    digest = hashlib.sha256("\n".join(account_ids).encode()).hexdigest()
    session.execute(insert(ProcessedMessage).values(key=batch_key, message_type=BATCH, message_id=batch_key,
                                                    body_hash=digest, outcome="processed", processed_at=now))
    return True


class BulkWriteFailed(Exception):
    """A batch's bulk write failed (an account invoiced elsewhere, say): the batch is rolled back
    and billed again account by account, each in its own savepoint."""


def run_batch(sessions: sessionmaker[Session], run_id: int, account_ids: Sequence[str], run_date: date | None,
              now: datetime, batch_key: str | None = None) -> BatchOutcome:
    """One batch in one transaction; if its bulk write fails, once more one account at a time."""
    try:
        with transaction(sessions) as session:
            return bill_batch(session, run_id, account_ids, run_date, now, batch_key)
    except BulkWriteFailed as exc:
        log.warning("bill_run_bulk_write_failed", run_id=run_id, accounts=len(account_ids),
                    error=type(exc.__cause__).__name__)
    with transaction(sessions) as session:
        return bill_batch(session, run_id, account_ids, run_date, now, batch_key, one_by_one=True)


def bill_batch(session: Session, run_id: int, account_ids: Sequence[str], run_date: date | None,
               now: datetime, batch_key: str | None = None, *, one_by_one: bool = False) -> BatchOutcome:
    """Bill one batch of a run in the caller's transaction and count it on the run.

    In bulk (the default) a failed write raises ``BulkWriteFailed`` for the caller to roll back;
    ``one_by_one`` writes each account in a savepoint and records the ones that fail.
    """
    if not claim_batch(session, batch_key, account_ids, now):
        log.info("bill_run_batch_redelivered", run_id=run_id, batch=batch_key)
        return BatchOutcome(invoiced=0, skipped=0, failed=0)
    settings = runtime.get().settings
    held = lock_accounts(session, account_ids)
    query = select(Account.__table__).where(among(session, Account.__table__.c.id, held))
    accounts = {account.id: account for account in session.execute(query).all()} if held else {}
    subscriptions = load_subscriptions_of(session, accounts)
    balances = open_balance_lines_of(session, accounts)
    bills: list[AccountBill] = []
    failures: list[dict[str, Any]] = []
    for account in (accounts[account_id] for account_id in held if account_id in accounts):
        try:
            today = _local_today(now, account.timezone)
            bills.append(compose_bill(account, subscriptions.get(account.id, []), balances.get(account.id, []),
                                      min(run_date, today) if run_date else today, settings=settings))
        except Exception as exc:
            failures.append(_failure(run_id, account.id, exc, now))
    if one_by_one:
        issued = _write_one_by_one(session, run_id, bills, failures, now)
    else:
        issued = _write_bulk(session, run_id, bills, now)
    _record(session, failures)
    outcome = BatchOutcome(invoiced=len(issued), skipped=len(account_ids) - len(issued) - len(failures),
                           failed=len(failures))
    _count(session, run_id, outcome)
    return outcome


def _local_today(now: datetime, timezone: str) -> date:
    try:
        return local_date(now, timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BillingError("timezone", f"{timezone!r} is not an IANA time zone this machine knows") from None


def _write_bulk(session: Session, run_id: int, bills: Sequence[AccountBill],
                now: datetime) -> dict[str, list[IssuedInvoice]]:
    try:
        return write_bills(session, bills, now=now, bill_run_id=run_id)
    except Exception as exc:
        if _transient(exc):
            raise
        raise BulkWriteFailed(f"bill run {run_id}: the bulk write of {len(bills)} accounts failed") from exc


def _write_one_by_one(session: Session, run_id: int, bills: Sequence[AccountBill], failures: list[dict[str, Any]],
                      now: datetime) -> dict[str, list[IssuedInvoice]]:
    """Each account in its own savepoint, recording the ones that still fail."""
    issued: dict[str, list[IssuedInvoice]] = {}
    for bill in bills:
        try:
            with session.begin_nested():
                issued.update(write_bills(session, [bill], now=now, bill_run_id=run_id))
        except Exception as exc:
            if _transient(exc):
                raise
            failures.append(_failure(run_id, bill.account_id, exc, now))
    return issued


def _transient(exc: BaseException) -> bool:
    """Faults of the database itself (connection, deadlock, lock table): retry the whole message."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


def _failure(run_id: int, account_id: str, exc: Exception, now: datetime) -> dict[str, Any]:
    """A failure row: the domain error's code and reason, or the database's first line, or the exception."""
    if isinstance(exc, BillingError):
        code, reason = exc.code, str(exc)
    elif isinstance(exc, DBAPIError):
        code = "conflict" if "IntegrityError" in type(exc).__name__ else "database"
        reason = f"{type(exc.orig).__name__}: {str(exc.orig).strip().splitlines()[0] if str(exc.orig) else ''}"
    else:
        code, reason = "error", f"{type(exc).__name__}: {exc}"
    log.warning("bill_run_account_failed", run_id=run_id, account_id=account_id, code=code, reason=reason)
    return {"bill_run_id": run_id, "account_id": account_id, "code": code, "reason": reason[:REASON_LIMIT],
            "created_at": now}


def _record(session: Session, failures: Sequence[dict[str, Any]]) -> None:
    if failures:
        session.execute(insert(BillRunFailure), list(failures))


def _count(session: Session, run_id: int, outcome: BatchOutcome) -> None:
    """Add the batch to the run with SQL increments (concurrent batches never lose a count), and close
    the run in the same statement when this batch was its last one.

    SET expressions see the row as it was, and the row lock makes concurrent batches take turns.
    Until the fan-out has stored ``accounts_due`` it is 0 and no batch can close the run.
    """
    now = clock.current().now()
    run = BillRun.__table__.c
    counted = outcome.invoiced + outcome.skipped + outcome.failed
    closes = (run.status == "running") & (run.accounts_due > 0) & (
        run.invoiced + run.skipped + run.failed + counted >= run.accounts_due)
    row = session.execute(
        update(BillRun).where(BillRun.id == run_id).values(
            invoiced=run.invoiced + outcome.invoiced, skipped=run.skipped + outcome.skipped,
            failed=run.failed + outcome.failed, status=case((closes, "finished"), else_=run.status),
            finished_at=case((closes, literal(now, run.finished_at.type)), else_=run.finished_at),
        ).returning(run.status, run.finished_at, run.started_at, run.accounts_due, run.failed)
    ).one()
    if row.status == "finished" and row.finished_at == now:
        _observe_finish(run_id, row.started_at, now, row.accounts_due, row.failed)


def _observe_finish(run_id: int, started_at: datetime | None, now: datetime, due: int, failed: int) -> None:
    BILL_RUN_SECONDS.observe(max(0.0, (now - started_at).total_seconds()) if started_at else 0.0)
    BILL_RUNS.labels(outcome="finished_with_failures" if failed else "finished").inc()
    BILL_RUN_FAILED_ACCOUNTS.inc(failed)
    BILL_RUN_LAST_FINISHED.set_to_current_time()
    log.info("bill_run_finished", run_id=run_id, accounts_due=due, failed=failed)


def _close_fanned_out(session: Session, run_id: int, total: int) -> None:
    """Store how many accounts the fan-out enqueued; close the run if its batches are all counted
    already (or there were none)."""
    now = clock.current().now()
    run = BillRun.__table__.c
    session.execute(update(BillRun).where(BillRun.id == run_id).values(accounts_due=total))
    started = session.execute(
        update(BillRun)
        .where(BillRun.id == run_id, run.status == "running", run.invoiced + run.skipped + run.failed >= total)
        .values(status="finished", finished_at=now)
        .returning(run.started_at, run.accounts_due, run.failed)
    ).one_or_none()
    if started is not None:
        _observe_finish(run_id, started.started_at, now, started.accounts_due, started.failed)


@dramatiq.actor(actor_name="invoicing.trigger_bill_run", queue_name="invoicing",
                max_retries=get_settings().max_retries)
def trigger_bill_run(envelope: Any) -> None:
    start_run(envelope, trigger_bill_run.broker)


@dramatiq.actor(actor_name="invoicing.bill_accounts", queue_name="invoicing",
                max_retries=get_settings().max_retries)
def bill_accounts(run_id: int, account_ids: list[str], run_date: str | None) -> None:
    """One batch of a bill run (the issue's ``bill_run.accounts``: ids only, produced by ``fan_out``)."""
    message = CurrentMessage.get_current_message()
    run_batch(runtime.get().sessions, run_id, account_ids, date.fromisoformat(run_date) if run_date else None,
              clock.current().now(), batch_key=f"{BATCH}:{message.message_id}" if message else None)
