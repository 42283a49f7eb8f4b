"""Part 1: a bill run of N due accounts through ``billing worker`` (P processes), against COPY.

Fresh tables and fresh worker processes for each size, so each worker's peak RSS belongs to that
run alone. Wall time runs from sending ``bill_run.trigger`` to the run's row reading ``finished``
(polled every 50 ms). A ``billing relay`` runs beside the workers, as in production: it numbers the
invoices and publishes their events; "published" is when its last event is on the stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.bench import processes
from tests.bench.checks import Checks
from tests.bench.context import Context, utc_today
from tests.bench.copy_baseline import CopyResult, copy_baseline
from tests.bench.database import checkpoint, checkpoints, connect, count, scalar, truncate_all
from tests.bench.drain import queue_leftovers, wait_published
from tests.bench.sampler import Sampler, Usage
from tests.bench.seed import AMOUNT_MINOR, DueShape, seed_due_accounts

WRITTEN = ("invoices", "invoice_lines", "outbox", "balance_entries")


@dataclass
class BillRunResult:
    accounts: int
    seconds: float
    ready_seconds: float
    written: dict[str, int]
    copy: CopyResult
    usage: Usage
    checks: Checks
    published_seconds: float = 0.0
    """From the trigger to the last event on the stream (invoices numbered by the relay)."""
    checkpoints: int = 0
    """Server checkpoints during the run (each costs a burst of writes)."""

    @property
    def rows(self) -> int:
        return sum(self.written.values())

    @property
    def invoices_per_second(self) -> float:
        return self.written["invoices"] / self.seconds

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds

    @property
    def copy_ratio(self) -> float:
        return self.rows_per_second / self.copy.batch_rows_per_second

    @property
    def copy_one_txn_ratio(self) -> float:
        return self.rows_per_second / self.copy.one_txn_rows_per_second

    @property
    def peak_rss_mb(self) -> list[float]:
        return list(self.usage.peak_rss_mb.values())


def _wait_finished(ctx: Context, message_id: str, timeout: float, worker: processes.Started) -> tuple[Any, ...]:
    deadline = time.monotonic() + timeout
    with connect(ctx.conninfo) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT status, accounts_due, invoiced, skipped, failed FROM bill_runs "
                               "WHERE message_id = %s", (message_id,)).fetchone()
            if row is not None and row[0] != "running":
                return tuple(row)
            if worker.popen.poll() is not None:
                raise processes.ProcessFailed(f"worker exited:\n{processes.tail(worker)}")
            time.sleep(0.05)
    raise processes.ProcessFailed(f"bill run not finished after {timeout:.0f} s:\n{processes.tail(worker)}")


def run_bill_run(ctx: Context, accounts: int) -> BillRunResult:
    from worker.client import send

    shape = DueShape.for_today(utc_today())
    truncate_all(ctx.conninfo)
    seed_due_accounts(ctx.conninfo, accounts, shape)
    worker = processes.billing_worker(ctx.env(), ctx.logs, processes=ctx.processes, threads=ctx.threads,
                                      name=f"worker-bill-run-{accounts}")
    relay = processes.relay(ctx.env(), ctx.logs)
    try:
        ready = processes.wait_ready(worker, ctx.processes)
        checkpoint(ctx.conninfo)  # the seed's writes are not the run's
        before = checkpoints(ctx.conninfo)
        with Sampler(ctx.conninfo, ctx.redis_pid, worker) as sampler:
            begin = time.monotonic()
            message_id = send(ctx.broker, "bill_run.trigger", {}, ctx.signer, now=datetime.now(UTC))
            state = _wait_finished(ctx, message_id, max(600.0, accounts / 20), worker)
            seconds = time.monotonic() - begin
            wait_published(ctx.conninfo, relay, max(600.0, accounts / 20))
            published = time.monotonic() - begin
        during = checkpoints(ctx.conninfo) - before
    finally:
        processes.stop(worker)
        processes.stop(relay)
    checks = check_bill_run(ctx, accounts, shape, state)
    baseline = copy_baseline(ctx.conninfo, ctx.settings.bill_run_batch_size, ctx.redis_pid)
    return BillRunResult(accounts, seconds, ready, _written(ctx), baseline, sampler.usage, checks, published,
                         during)


def _written(ctx: Context) -> dict[str, int]:
    with connect(ctx.conninfo) as conn:
        return {table: count(conn, table) for table in WRITTEN}


def check_bill_run(ctx: Context, accounts: int, shape: DueShape, state: tuple[Any, ...]) -> Checks:
    checks = Checks(f"bill run {accounts:,}")
    checks.equal("run status, due, invoiced, skipped, failed", ("finished", accounts, accounts, 0, 0), state)
    with connect(ctx.conninfo) as conn:
        checks.equal("invoices", accounts, count(conn, "invoices"))
        checks.equal("accounts invoiced (no duplicates)", accounts,
                     scalar(conn, "SELECT count(DISTINCT account_id) FROM invoices"))
        checks.equal("invoice lines", accounts, count(conn, "invoice_lines"))
        checks.equal("outbox events", accounts, count(conn, "outbox"))
        checks.equal("total invoiced (minor units)", accounts * AMOUNT_MINOR,
                     int(scalar(conn, "SELECT coalesce(sum(total_minor), 0) FROM invoices")))
        checks.equal("distinct invoice numbers", accounts, scalar(conn, "SELECT count(DISTINCT number) FROM invoices"))
        checks.equal("events published", accounts,
                     scalar(conn, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL"))
        checks.equal("invoice counter (gapless)", accounts,
                     scalar(conn, "SELECT coalesce(sum(last_number), 0) FROM invoice_counters"))
        checks.equal("subscriptions advanced to the next anchor", accounts,
                     scalar(conn, "SELECT count(*) FROM subscriptions WHERE next_bill_date = %s",
                            (shape.next_anchor,)))
        checks.equal("failures recorded", 0, count(conn, "bill_run_failures"))
        checks.equal("rejections", 0, count(conn, "rejections"))
    checks.equal("invoicing queue left (waiting, delayed, dead)", {"waiting": 0, "delayed": 0, "dead": 0},
                 queue_leftovers(ctx.redis, ctx.queue_key("invoicing")))
    return checks
