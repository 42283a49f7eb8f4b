"""Operator commands: send, trigger, status, health, dead letters, audit and approvals."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select, update

from worker.settings import get_settings

FAILURES_SHOWN = 10
"""Failed accounts listed per run by ``status`` and ``bill-run --wait`` (all are in bill_run_failures)."""


def _now() -> datetime:
    return datetime.now(UTC)


def enqueue_file(message_type: str, path: Path) -> int:
    from jobs.client import Signer, read_bodies, send_many
    from worker.broker import install

    settings = get_settings()
    broker = install(settings)
    try:
        bodies = list(read_bodies(path))
    except (OSError, ValueError) as exc:
        print(f"billing enqueue: {exc}", file=sys.stderr)
        return 2
    sent = send_many(broker, ((message_type, body) for body in bodies), Signer.from_settings(settings), now=_now())
    print(f"sent {sent} {message_type} message(s)")
    return 0


def _run_progress(run: Any) -> str:
    """One progress line: a bar over the accounts counted so far (empty while the run fans out)."""
    width = 30
    done = run.invoiced + run.skipped + run.failed
    if run.status == "running" and not run.accounts_due:
        return f"[{'.' * width}] selecting due accounts, {done} counted so far"
    filled = width if not run.accounts_due else min(width, int(width * done / run.accounts_due))
    return (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{run.accounts_due} accounts, {run.invoiced} invoiced, "
            f"{run.skipped} skipped, {run.failed} failed")


def _first_failures(session: Any, run_id: int) -> list[Any]:
    """The run's first ``FAILURES_SHOWN`` failed accounts: (account_id, code, reason)."""
    from models.tables.bill_run import BillRunFailure

    return list(session.execute(select(BillRunFailure.account_id, BillRunFailure.code, BillRunFailure.reason)
                                .where(BillRunFailure.bill_run_id == run_id).order_by(BillRunFailure.id)
                                .limit(FAILURES_SHOWN)).all())


def _print_failures(run_id: int) -> None:
    from jobs import runtime
    from worker.db import transaction

    with transaction(runtime.get().sessions) as session:
        rows = _first_failures(session, run_id)
    for account_id, code, reason in rows:
        print(f"  failed: {account_id} [{code}] {reason}", file=sys.stderr)


def bill_run(run_date: str | None, *, wait: bool, timeout: float) -> int:
    """Send a trigger; with ``wait``, follow its run and exit 1 if any account failed or the run did."""
    from jobs import runtime
    from jobs.client import Signer, send
    from models.tables.bill_run import BillRun
    from worker.broker import install
    from worker.db import transaction

    settings = get_settings()
    body: dict[str, Any] = {"date": run_date} if run_date else {}
    message_id = send(install(settings), "bill_run.trigger", body, Signer.from_settings(settings), now=_now())
    print(f"bill run requested (message {message_id})")
    if not wait:
        return 0
    rt = runtime.get()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with transaction(rt.sessions) as session:
            run = session.scalar(select(BillRun).where(BillRun.message_id == message_id)
                                 .order_by(BillRun.id.desc()).limit(1))
        if run is not None:
            print(f"\r{_run_progress(run)}", end="", flush=True)
            if run.status != "running":
                print(f"\nbill run #{run.id} {run.status}")
                if run.failed:
                    _print_failures(run.id)
                return 1 if run.failed or run.status != "finished" else 0
        time.sleep(0.5)
    print("\nbilling bill-run: timed out waiting for the run to finish", file=sys.stderr)
    return 1


def _run_document(session: Any, run: Any) -> dict[str, Any]:
    """A run for ``billing status``: when, how many, and why accounts failed (the first few)."""
    failures = _first_failures(session, run.id)
    seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
    return {"id": run.id, "date": run.run_date.isoformat() if run.run_date else None, "status": run.status,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "seconds": seconds, "accounts_due": run.accounts_due, "invoiced": run.invoiced,
            "skipped": run.skipped, "failed": run.failed,
            "failures": [{"account": account, "code": code, "reason": reason} for account, code, reason in failures]}


def status_document() -> dict[str, Any]:
    from jobs import runtime
    from models.tables.bill_run import BillRun
    from models.tables.rejection import Rejection
    from worker.db import transaction
    from worker.outbox import measure_lag

    rt = runtime.get()
    with transaction(rt.sessions) as session:
        last_runs = session.scalars(select(BillRun).order_by(BillRun.id.desc()).limit(5)).all()
        runs = [_run_document(session, run) for run in last_runs]
        rejected = dict(session.execute(select(Rejection.code, func.count()).group_by(Rejection.code)).all())
    pending, lag = measure_lag(rt.sessions, _now())
    try:
        from worker.gauges import queue_depths

        queues: Any = queue_depths(redis.Redis.from_url(rt.settings.redis_url, socket_timeout=2),
                                   rt.settings.namespace)
    except redis.RedisError as exc:
        queues = {"error": str(exc)}
    return {"bill_runs": runs, "queues": queues, "outbox": {"pending": pending, "lag_seconds": round(lag, 3)},
            "rejections": rejected}


def status(*, as_json: bool) -> int:
    document = status_document()
    if as_json:
        print(json.dumps(document, indent=2))
        return 0
    print("last bill runs:")
    for run in document["bill_runs"] or [{"id": "-", "status": "none yet"}]:
        print(f"  #{run['id']} {run.get('date') or 'today'} {run['status']}: {run.get('accounts_due', 0)} due, "
              f"{run.get('invoiced', 0)} invoiced, {run.get('skipped', 0)} skipped, {run.get('failed', 0)} failed")
        for failure in run.get("failures", []):
            print(f"      {failure['account']} [{failure['code']}] {failure['reason']}")
    print("queues:", json.dumps(document["queues"]))
    print(f"outbox: {document['outbox']['pending']} pending, lag {document['outbox']['lag_seconds']} s")
    print("rejections:", json.dumps(document["rejections"]))
    return 0


def health() -> int:
    from jobs import runtime
    from worker.health import check_health

    rt = runtime.get()
    report = check_health(rt.engine, redis.Redis.from_url(rt.settings.redis_url))
    print(json.dumps({"ok": report.ok, "checks": report.checks}))
    return 0 if report.ok else 1


def dlq_list(*, code: str | None, limit: int) -> int:
    from jobs import runtime
    from models.tables.rejection import Rejection
    from worker.db import transaction

    with transaction(runtime.get().sessions) as session:
        query = select(Rejection).order_by(Rejection.id.desc()).limit(limit)
        if code:
            query = query.where(Rejection.code == code)
        for row in session.scalars(query):
            replayed = f" (replayed {row.replayed_at:%Y-%m-%d %H:%M})" if row.replayed_at else ""
            print(f"{row.id:>6} {row.created_at:%Y-%m-%d %H:%M:%S} {row.code:<16} {row.message_type or '-':<22} "
                  f"{row.reason}{replayed}")
    return 0


def dlq_show(rejection_id: int | None) -> int:
    from jobs import runtime
    from models.tables.rejection import Rejection
    from worker.db import transaction

    with transaction(runtime.get().sessions) as session:
        row = session.get(Rejection, rejection_id) if rejection_id else None
        if row is None:
            print(f"billing dlq: no rejection {rejection_id}", file=sys.stderr)
            return 2
        print(json.dumps({"id": row.id, "code": row.code, "reason": row.reason, "message_id": row.message_id,
                          "message_type": row.message_type, "producer": row.producer,
                          "created_at": row.created_at.isoformat(), "payload": json.loads(row.payload)}, indent=2))
    return 0


def dlq_replay(rejection_id: int | None) -> int:
    """Re-send a rejected message whose original was kept (see jobs.rejections.REPLAYABLE)."""
    from jobs import runtime
    from jobs.parking import resend
    from models.tables.rejection import Rejection
    from worker.broker import install
    from worker.db import transaction

    rt = runtime.get()
    with transaction(rt.sessions) as session:
        row = session.get(Rejection, rejection_id) if rejection_id else None
        if row is None:
            print(f"billing dlq: no rejection {rejection_id}", file=sys.stderr)
            return 2
        if row.envelope is None:
            print(f"billing dlq: rejection {row.id} ({row.code}) kept no original to replay; the producer must "
                  "send a corrected message", file=sys.stderr)
            return 2
        if row.replayed_at is not None:
            print(f"billing dlq: rejection {row.id} was already replayed at {row.replayed_at:%Y-%m-%d %H:%M:%S} "
                  f"as broker message {row.replay_message_id}", file=sys.stderr)
            return 2
        envelope = json.loads(row.envelope)
    message_id = resend(rt.sessions, install(rt.settings), envelope, f"dlq:{rejection_id}")
    with transaction(rt.sessions) as session:
        session.execute(update(Rejection).where(Rejection.id == rejection_id)
                        .values(replayed_at=_now(), replay_message_id=message_id, envelope=None))
    print(f"rejection {rejection_id} re-sent as broker message {message_id}")
    return 0


def audit(account_id: str, *, as_csv: bool) -> int:
    """Every balance event of the account (see ``worker.audit``), as text or CSV."""
    from jobs import runtime
    from worker.audit import print_audit
    from worker.db import transaction

    with transaction(runtime.get().sessions) as session:
        return print_audit(session, account_id, as_csv=as_csv)


def decide(line_id: str, *, decision: str, identity: str, reason: str) -> int:
    """Approve or decline a pending line, as someone other than its author (audited, append-only)."""
    from jobs import runtime
    from worker import audit as trail
    from worker import clock
    from worker.db import transaction

    with transaction(runtime.get().sessions) as session:
        line, refusal = trail.decide(session, trail.Decision(line_id, decision, identity, reason),
                                     clock.current().now())
        if refusal is not None:
            session.rollback()
            print(f"billing {decision}: {refusal}", file=sys.stderr)
            return trail.EXIT_REFUSED
    assert line is not None
    trail.count_decision(line, decision)
    print(f"balance line {line_id} {decision} by {identity.strip()}")
    return 0
