"""A bill run's batches: each bills its accounts in ONE transaction with a few bulk statements.

A batch try-locks its accounts (an account another run holds is skipped; the next run picks it
up), loads them with one query per table, composes each with the pure core (an account that
fails there is isolated and recorded), and writes the rest in bulk (``jobs.invoicing.write_bills``).
Should the bulk write fail, the batch is rolled back and billed again with one savepoint per
account, so every other account still commits. Unique keys on (subscription, period start) make
overlapping runs harmless, and the batch's own key (its broker message id) makes a redelivered
batch change no counter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import structlog
from sqlalchemy import bindparam, case, insert, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from jobs import idempotency
from jobs.bills import NO_LIFECYCLE, AccountBill, Lifecycle, compose_bill
from jobs.clock import local_date
from jobs.context import JobContext
from jobs.invoicing import IssuedInvoice, write_bills
from jobs.metrics import BILL_RUN_FAILED_ACCOUNTS, BILL_RUN_LAST_FINISHED, BILL_RUN_SECONDS, BILL_RUNS
from models.billing.errors import BillingError
from models.tables.account import Account
from models.tables.bill_run import BillRun, BillRunFailure
from models.tables.locks import LockSpace, try_lock_many
from models.tables.mapping import (
    among,
    load_billed_of,
    load_changes_of,
    load_subscriptions_of,
    open_balance_lines_of,
)
from models.tables.store import table_of, transaction

log = structlog.get_logger(__name__)

BATCH = "bill_run.accounts"
REASON_LIMIT = 2000


@dataclass(frozen=True)
class BatchOutcome:
    """Accounts of one batch: invoiced, skipped (another run holds or already billed them), failed."""

    invoiced: int
    skipped: int
    failed: int


def claim_batch(session: Session, batch_key: str | None, account_ids: Sequence[str], now: datetime) -> bool:
    """Record a batch message as applied, in the batch's own transaction; False when it already was.

    A redelivered batch (a worker killed between commit and ack) then changes no counter.
    """
    if batch_key is None:
        return True
    digest = hashlib.sha256("\n".join(account_ids).encode()).hexdigest()
    return idempotency.claim(session, batch_key, message_type=BATCH, message_id=batch_key, body_hash=digest,
                             now=now, what=f"bill-run batch {batch_key}")


class BulkWriteFailed(Exception):
    """A batch's bulk write failed (an account invoiced elsewhere, say): the batch is rolled back
    and billed again account by account, each in its own savepoint."""


def run_batch(ctx: JobContext, run_id: int, account_ids: Sequence[str], run_date: date | None,
              batch_key: str | None = None) -> BatchOutcome:
    """One batch in one transaction; if its bulk write fails, once more one account at a time."""
    now = ctx.now()
    try:
        with transaction(ctx.sessions) as session:
            return bill_batch(ctx, session, run_id, account_ids, run_date, now, batch_key)
    except BulkWriteFailed as exc:
        log.warning("bill_run_bulk_write_failed", run_id=run_id, accounts=len(account_ids),
                    error=type(exc.__cause__).__name__)
    with transaction(ctx.sessions) as session:
        return bill_batch(ctx, session, run_id, account_ids, run_date, now, batch_key, one_by_one=True)


def bill_batch(ctx: JobContext, session: Session, run_id: int, account_ids: Sequence[str], run_date: date | None,
               now: datetime, batch_key: str | None = None, *, one_by_one: bool = False) -> BatchOutcome:
    """Bill one batch of a run in the caller's transaction and count it on the run.

    In bulk (the default) a failed write raises ``BulkWriteFailed`` for the caller to roll back;
    ``one_by_one`` writes each account in a savepoint and records the ones that fail.
    """
    if not claim_batch(session, batch_key, account_ids, now):
        log.info("bill_run_batch_redelivered", run_id=run_id, batch=batch_key)
        return BatchOutcome(invoiced=0, skipped=0, failed=0)
    settings = ctx.settings
    held = try_lock_many(session, LockSpace.ACCOUNT, account_ids)
    query = select(Account.__table__).where(among(session, Account.__table__.c.id, held))
    accounts = {account.id: account for account in session.execute(query).all()} if held else {}
    subscriptions = load_subscriptions_of(session, accounts)
    balances = open_balance_lines_of(session, accounts)
    lifecycle = _lifecycle_of(session, [row for rows in subscriptions.values() for row in rows])
    bills: list[AccountBill] = []
    failures: list[dict[str, Any]] = []
    for account in (accounts[account_id] for account_id in held if account_id in accounts):
        try:
            today = _local_today(now, account.timezone)
            bills.append(compose_bill(account, subscriptions.get(account.id, []), balances.get(account.id, []),
                                      min(run_date, today) if run_date else today, settings=settings,
                                      lifecycle=lifecycle))
        except Exception as exc:
            failures.append(_failure(run_id, account.id, exc, now))
    if one_by_one:
        issued = _write_one_by_one(session, run_id, bills, failures, now)
    else:
        issued = _write_bulk(session, run_id, bills, now)
    _record(session, failures)
    outcome = BatchOutcome(invoiced=len(issued), skipped=len(account_ids) - len(issued) - len(failures),
                           failed=len(failures))
    _count(session, run_id, outcome, now)
    return outcome


def _lifecycle_of(session: Session, subscriptions: Sequence[Any]) -> Lifecycle:
    """The changes and billed ranges of the batch's changed subscriptions: two queries, or none at all."""
    changed = [row.id for row in subscriptions if row.has_changes]
    recheck = {row.id: row.recheck_from for row in subscriptions if row.recheck_from is not None}
    if not changed and not recheck:
        return NO_LIFECYCLE
    return Lifecycle(changes=load_changes_of(session, changed), billed=load_billed_of(session, recheck))


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


def _count_statement() -> Any:
    """The UPDATE of ``_count``, built once (building it cost more than running it on SQLite)."""
    table = table_of(BillRun)  # a Core statement: none of the ORM's bulk-update bookkeeping
    run = table.c
    closes = (run.status == "running") & (run.accounts_due > 0) & (
        run.invoiced + run.skipped + run.failed + bindparam("counted") >= run.accounts_due)
    return update(table).where(run.id == bindparam("run_id")).values(
        invoiced=run.invoiced + bindparam("invoiced"), skipped=run.skipped + bindparam("skipped"),
        failed=run.failed + bindparam("failed"), status=case((closes, "finished"), else_=run.status),
        finished_at=case((closes, bindparam("now", type_=run.finished_at.type)), else_=run.finished_at),
    ).returning(run.status, run.finished_at, run.started_at, run.accounts_due, run.failed)


_COUNT = _count_statement()


def _count(session: Session, run_id: int, outcome: BatchOutcome, now: datetime) -> None:
    """Add the batch to the run with SQL increments (concurrent batches never lose a count), and close
    the run in the same statement when this batch was its last one.

    SET expressions see the row as it was, and the row lock makes concurrent batches take turns.
    Until the fan-out has stored ``accounts_due`` it is 0 and no batch can close the run.
    """
    counted = outcome.invoiced + outcome.skipped + outcome.failed
    row = session.execute(_COUNT, {"run_id": run_id, "invoiced": outcome.invoiced, "skipped": outcome.skipped,
                                   "failed": outcome.failed, "counted": counted, "now": now}).one()
    if row.status == "finished" and row.finished_at == now:
        observe_finish(run_id, row.started_at, now, row.accounts_due, row.failed)


def observe_finish(run_id: int, started_at: datetime | None, now: datetime, due: int, failed: int) -> None:
    BILL_RUN_SECONDS.observe(max(0.0, (now - started_at).total_seconds()) if started_at else 0.0)
    BILL_RUNS.labels(outcome="finished_with_failures" if failed else "finished").inc()
    BILL_RUN_FAILED_ACCOUNTS.inc(failed)
    BILL_RUN_LAST_FINISHED.set_to_current_time()
    log.info("bill_run_finished", run_id=run_id, accounts_due=due, failed=failed)


