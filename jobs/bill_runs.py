"""Bill runs: level-triggered, fanned out in batches of due accounts.

A trigger ("bill everything due up to D", the ``bill_run.trigger`` message) records a run and,
once that commits, sends one batch message per page of the accounts that are due on their own
local date (``jobs.due``); ``jobs.bill_batches`` bills each batch. A late or missed trigger loses
nothing: the next one bills every period that fell due meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import structlog
from sqlalchemy import bindparam, case, insert, select, update
from sqlalchemy.orm import Session

from jobs import idempotency
from jobs.bill_batches import observe_finish
from jobs.canonical import body_hash
from jobs.context import BrokerDelivery, JobContext
from jobs.due import due_pages, due_time_zones, widest_today, zone_todays
from jobs.errors import InvalidMessage
from jobs.metrics import BILL_RUNS
from jobs.outcomes import Outcome
from jobs.pipeline import Received, receive
from jobs.routes import BILL_RUN_BATCH
from jobs.schemas import TriggerBillRun
from jobs.sending import Outgoing
from models.tables.bill_run import BillRun
from models.tables.store import table_of, transaction

log = structlog.get_logger(__name__)

TRIGGER = "bill_run.trigger"


_NEW_RUN = insert(table_of(BillRun))
"""A run's row, written with Core (the ORM's unit of work for one new object cost more than the insert)."""
_RUNS = table_of(BillRun).c
_RUNNING = (select(_RUNS.id, _RUNS.run_date, _RUNS.started_at)
            .where(_RUNS.message_id == bindparam("message_id"), _RUNS.status == "running")
            .order_by(_RUNS.id.desc()).limit(1))
"""The run a trigger started, while it runs (Core: the same SQL without the ORM's per-execution work)."""


def trigger_key(envelope_id: str) -> str:
    return f"{TRIGGER}:{envelope_id}"


def handle_trigger(ctx: JobContext, session: Session, received: Received, body: TriggerBillRun) -> Outcome:
    """Record the run; the fan-out happens after commit (see ``start_run``).

    A redelivered trigger is a duplicate, unless its fan-out failed: that gave its key back, so
    the retry starts a fresh run.
    """
    if body.date is not None and body.date > widest_today(received.now):
        raise InvalidMessage("date", f"{body.date} is later than today in every time zone: a run never bills ahead")
    if not idempotency.claim(session, trigger_key(received.envelope.id), message_type=TRIGGER,
                             message_id=received.envelope.id, body_hash=body_hash(received.envelope.body),
                             now=received.now, what=f"bill-run trigger {received.envelope.id}"):
        return Outcome.DUPLICATE
    session.execute(_NEW_RUN, {"run_date": body.date, "message_id": received.envelope.id,
                               "requested_at": received.now, "started_at": received.now, "status": "running"})
    return Outcome.PROCESSED


def batch_message(run_id: int, account_ids: Sequence[str], run_date: date | None) -> Outgoing:
    """One batch of a run: ids only, so a batch message stays small whatever the accounts hold."""
    return Outgoing(queue_name=BILL_RUN_BATCH.queue_name, actor_name=BILL_RUN_BATCH.actor_name,
                    args=(run_id, list(account_ids), run_date.isoformat() if run_date else None))


def fan_out(ctx: JobContext, message_id: str) -> int | None:
    """Enqueue one ``bill_accounts`` message per page of the accounts due in the run that the trigger
    ``message_id`` started; return the run's id, or None if no such run is running.

    The run is read in the transaction that walks the due accounts. ``accounts_due`` stays 0 until
    every page is enqueued, so a batch that finishes early cannot close the run; whichever of the
    fan-out and the last batch comes second closes it.
    """
    total = 0
    run = None
    try:
        with transaction(ctx.sessions) as session:
            run = session.execute(_RUNNING, {"message_id": message_id}).one_or_none()
            if run is None:
                return None
            run_id, run_date, now = run.id, run.run_date, run.started_at
            todays = zone_todays(due_time_zones(session, widest_today(now, run_date)), now, run_date)
            for page in due_pages(session, todays, ctx.settings.bill_run_batch_size):
                ctx.sender.send(batch_message(run_id, page, run_date))
                total += len(page)
        with transaction(ctx.sessions) as session:
            _close_fanned_out(session, run_id, total, ctx.now())
    except Exception:
        if run is None:  # the run could not be read: there is none to fail
            raise
        log.exception("bill_run_fan_out_failed", run_id=run.id, enqueued=total)
        BILL_RUNS.labels(outcome="failed").inc()
        with transaction(ctx.sessions) as session:
            failed = session.execute(
                update(BillRun).where(BillRun.id == run.id, BillRun.status == "running")
                .values(status="failed", finished_at=ctx.now(), accounts_due=total).returning(BillRun.message_id)
            ).scalar()
            if failed is not None:  # the trigger's retry starts a fresh run
                idempotency.release(session, trigger_key(failed))
        raise
    log.info("bill_run_fanned_out", run_id=run_id, accounts=total, time_zones=len(todays))
    return int(run_id)


def start_run(ctx: JobContext, envelope: Any, delivery: BrokerDelivery) -> int | None:
    """Receive a trigger and fan its run out; the run's id, or None if there is none."""
    if receive(ctx, TRIGGER, envelope, handle_trigger, delivery) is not Outcome.PROCESSED:
        return None
    assert isinstance(envelope, dict)  # verified
    return fan_out(ctx, str(envelope.get("id")))


def _close_statement() -> Any:
    """The UPDATE of ``_close_fanned_out``, built once (building it cost more than running it on SQLite).

    One Core statement: SET expressions see the row as it was, so the run closes exactly when the
    counts its batches have added reach the total; ``accounts_due`` was 0 until then, so no batch
    can have closed it first.
    """
    table = table_of(BillRun)
    run = table.c
    closes = (run.status == "running") & (run.invoiced + run.skipped + run.failed >= bindparam("total"))
    return update(table).where(run.id == bindparam("run_id")).values(
        accounts_due=bindparam("total"), status=case((closes, "finished"), else_=run.status),
        finished_at=case((closes, bindparam("now", type_=run.finished_at.type)), else_=run.finished_at),
    ).returning(run.status, run.finished_at, run.started_at, run.accounts_due, run.failed)


_CLOSE = _close_statement()


def _close_fanned_out(session: Session, run_id: int, total: int, now: datetime) -> None:
    """Store how many accounts the fan-out enqueued; close the run if its batches are all counted
    already (or there were none)."""
    row = session.execute(_CLOSE, {"run_id": run_id, "total": total, "now": now}).one_or_none()
    if row is not None and row.status == "finished" and row.finished_at == now:
        observe_finish(run_id, row.started_at, now, row.accounts_due, row.failed)
