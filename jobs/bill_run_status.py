"""What ``billing status`` and ``billing bill-run --wait`` read about bill runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.tables.bill_run import BillRun, BillRunFailure
from models.tables.rejection import Rejection

FAILURES_SHOWN = 10
"""Failed accounts listed per run (all are in bill_run_failures)."""


def first_failures(session: Session, run_id: int) -> list[tuple[str, str, str]]:
    """The run's first ``FAILURES_SHOWN`` failed accounts: (account_id, code, reason)."""
    query = (select(BillRunFailure.account_id, BillRunFailure.code, BillRunFailure.reason)
             .where(BillRunFailure.bill_run_id == run_id).order_by(BillRunFailure.id).limit(FAILURES_SHOWN))
    return [(row.account_id, row.code, row.reason) for row in session.execute(query).all()]


def run_of_trigger(session: Session, message_id: str) -> BillRun | None:
    """The latest run a trigger message started, if it started one yet."""
    return session.scalar(select(BillRun).where(BillRun.message_id == message_id).order_by(BillRun.id.desc()).limit(1))


def run_document(session: Session, run: BillRun) -> dict[str, Any]:
    """A run for ``billing status``: when, how many, and why accounts failed (the first few)."""
    failures = first_failures(session, run.id)
    seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
    return {"id": run.id, "date": run.run_date.isoformat() if run.run_date else None, "status": run.status,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "seconds": seconds, "accounts_due": run.accounts_due, "invoiced": run.invoiced,
            "skipped": run.skipped, "failed": run.failed,
            "failures": [{"account": account, "code": code, "reason": reason} for account, code, reason in failures]}


def recent_runs(session: Session, limit: int = 5) -> list[dict[str, Any]]:
    return [run_document(session, run)
            for run in session.scalars(select(BillRun).order_by(BillRun.id.desc()).limit(limit)).all()]


def rejections_by_code(session: Session) -> dict[str, int]:
    return {code: int(count) for code, count in
            session.execute(select(Rejection.code, func.count()).group_by(Rejection.code)).all()}
