"""``billing enqueue`` and ``billing bill-run``: sign and send, and follow a run to its end."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from jobs.bill_run_status import first_failures, run_of_trigger
from jobs.body_files import read_bodies
from jobs.signer import Signer
from models.tables.bill_run import BillRun
from models.tables.store import transaction
from worker.broker import build_broker
from worker.client import send, send_many
from worker.commands import context, wall_clock
from worker.settings import get_settings


def enqueue_file(message_type: str, path: Path) -> int:
    settings = get_settings()
    try:
        bodies = list(read_bodies(path))
    except (OSError, ValueError) as exc:
        print(f"billing enqueue: {exc}", file=sys.stderr)
        return 2
    broker = build_broker(settings)
    try:
        sent = send_many(broker, ((message_type, body) for body in bodies), Signer.from_settings(settings),
                         now=wall_clock())
    finally:
        broker.close()
    print(f"sent {sent} {message_type} message(s)")
    return 0


def _run_progress(run: BillRun) -> str:
    """One progress line: a bar over the accounts counted so far (empty while the run fans out)."""
    width = 30
    done = run.invoiced + run.skipped + run.failed
    if run.status == "running" and not run.accounts_due:
        return f"[{'.' * width}] selecting due accounts, {done} counted so far"
    filled = width if not run.accounts_due else min(width, int(width * done / run.accounts_due))
    return (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{run.accounts_due} accounts, {run.invoiced} invoiced, "
            f"{run.skipped} skipped, {run.failed} failed")


def bill_run(run_date: str | None, *, wait: bool, timeout: float) -> int:
    """Send a trigger; with ``wait``, follow its run and exit 1 if any account failed or the run did."""
    settings = get_settings()
    body: dict[str, Any] = {"date": run_date} if run_date else {}
    broker = build_broker(settings)
    try:
        message_id = send(broker, "bill_run.trigger", body, Signer.from_settings(settings), now=wall_clock())
    finally:
        broker.close()
    print(f"bill run requested (message {message_id})")
    if not wait:
        return 0
    ctx = context()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with transaction(ctx.sessions) as session:
            run = run_of_trigger(session, message_id)
            failures = first_failures(session, run.id) if run is not None and run.failed else []
        if run is not None:
            print(f"\r{_run_progress(run)}", end="", flush=True)
            if run.status != "running":
                print(f"\nbill run #{run.id} {run.status}")
                for account_id, code, reason in failures:
                    print(f"  failed: {account_id} [{code}] {reason}", file=sys.stderr)
                return 1 if run.failed or run.status != "finished" else 0
        time.sleep(0.5)
    print("\nbilling bill-run: timed out waiting for the run to finish", file=sys.stderr)
    return 1
