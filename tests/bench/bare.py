"""Part 2c: the bare unit of work, the ceiling the database sets for one onboarding.

The same rows ``account.onboard`` writes (message_deliveries, account, subscription in its billed
state, the invoice counter, the invoice, its lines, the outbox event, processed_messages), written
by plain psycopg in one transaction per account: no SQLAlchemy, no queue, no reads, no billing
computation (the rows come from ``billing preview``'s invoice). Same concurrency as the worker:
P processes of T threads, one connection per thread, accounts handed out from a shared counter.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from tests.bench.bodies import BILL_DAY, PLAN, Expected, three_period_start
from tests.bench.context import Context
from tests.bench.database import truncate_all
from tests.bench.onboarding import check_onboarding
from tests.bench.sampler import Sampler
from tests.bench.throughput import Throughput

MESSAGE_TYPE = "account.onboard"
BARRIER_TIMEOUT = 120.0


@dataclass(frozen=True)
class Plan:
    """Everything a writer process needs, picklable (processes are spawned)."""

    conninfo: str
    messages: int
    threads: int
    today: date
    start_date: date
    billed_until: date
    series: str
    lines: tuple[tuple[Any, ...], ...]
    """Per line: position, plan, period_start, period_end, days, period_days, amount_minor."""
    totals: tuple[int, int, int, int]
    payload: str
    """The invoice document as JSON with ``@NUMBER@`` and ``@ACCOUNT@`` to fill in."""


def _minor(text: str) -> int:
    return int(text.replace(".", ""))


def make_plan(ctx: Context, messages: int, expected: Expected, today: date) -> Plan:
    document = expected.document
    lines = tuple(
        (position, line["plan"], date.fromisoformat(line["period_start"]), date.fromisoformat(line["period_end"]),
         line["days"], line["period_days"], _minor(line["amount"]))
        for position, line in enumerate(document["lines"])
    )
    template = json.dumps({**document, "number": "@NUMBER@", "account": "@ACCOUNT@"})
    totals = (_minor(document["subtotal"]), _minor(document["discount"]), _minor(document["credit"]),
              _minor(document["total"]))
    return Plan(ctx.conninfo, messages, ctx.threads, today, three_period_start(today),
                lines[-1][3] + timedelta(days=1), f"{ctx.settings.invoice_prefix}-{today.year}", lines, totals,
                template)


def write_one(conn: psycopg.Connection[tuple[Any, ...]], plan: Plan, index: int) -> None:
    """One onboarding's rows in one transaction, one statement per table; the counter row, which
    serialises every invoice, is taken as late as it can be (only the invoice, lines and outbox need it)."""
    account = f"bar-{index:07d}"
    now = datetime.now(UTC)
    message_id, digest = uuid.uuid4().hex, hashlib.sha256(account.encode()).hexdigest()
    with conn.transaction():
        conn.execute(
            "INSERT INTO message_deliveries (message_id, message_type, broker_message_id, deliveries, first_seen_at,"
            " last_seen_at) VALUES (%s, %s, %s, 1, %s, %s) ON CONFLICT (message_id) DO UPDATE SET"
            " deliveries = message_deliveries.deliveries + 1, last_seen_at = excluded.last_seen_at"
            " RETURNING deliveries, broker_message_id", (message_id, MESSAGE_TYPE, str(uuid.uuid4()), now, now))
        conn.execute("INSERT INTO processed_messages (key, message_type, message_id, body_hash, outcome, processed_at)"
                     " VALUES (%s, %s, %s, %s, 'processed', %s)",
                     (f"{MESSAGE_TYPE}:{account}", MESSAGE_TYPE, message_id, digest, now))
        conn.execute(
            "INSERT INTO accounts (id, name, currency, timezone, bill_day, combine_invoices, start_date, onboarded_on,"
            " hold_until, body_hash, created_at) VALUES (%s, %s, 'USD', 'UTC', %s, NULL, %s, %s, NULL, %s, %s)",
            (account, f"Bench {account}", BILL_DAY, plan.start_date, plan.today, digest, now))
        subscription = conn.execute(
            "INSERT INTO subscriptions (account_id, position, key, plan, amount_minor, currency, interval,"
            " interval_count, timing, proration, bill_day, bill_month, bill_weekday, start_date, billed_until,"
            " next_bill_date, has_changes)"
            " VALUES (%s, 0, %s, %s, 1000, 'USD', 'month', 1, 'advance', 'daily', %s, NULL, NULL, %s, %s, %s, false)"
            " RETURNING id", (account, PLAN, PLAN, BILL_DAY, plan.start_date, plan.billed_until, plan.billed_until),
        ).fetchone()
        last = conn.execute(
            "INSERT INTO invoice_counters (series, last_number) VALUES (%s, 1) ON CONFLICT (series) DO UPDATE"
            " SET last_number = invoice_counters.last_number + 1 RETURNING last_number", (plan.series,)).fetchone()
        assert subscription is not None and last is not None
        number = f"{plan.series}-{last[0]:06d}"
        invoice = conn.execute(
            "INSERT INTO invoices (number, account_id, issue_date, currency, subtotal_minor, discount_minor,"
            " credit_minor, total_minor, bill_run_id, created_at) VALUES (%s, %s, %s, 'USD', %s, %s, %s, %s, NULL, %s)"
            " RETURNING id", (number, account, plan.today, *plan.totals, now)).fetchone()
        assert invoice is not None
        values = ", ".join(["(%s, %s, 'recurring', %s, %s, %s, %s, %s, %s, %s, %s, %s, 1000, NULL)"] * len(plan.lines))
        params = [item for line in plan.lines
                  for item in (invoice[0], line[0], subscription[0], *line[1:], line[2], line[3])]
        conn.execute(
            "INSERT INTO invoice_lines (invoice_id, position, kind, subscription_id, plan, period_start, period_end,"
            " days, period_days, amount_minor, billing_period_start, billing_period_end, rate_minor, balance_line_id)"
            f" VALUES {values} RETURNING id", params)
        payload = plan.payload.replace("@NUMBER@", number).replace("@ACCOUNT@", account)
        conn.execute("INSERT INTO outbox (event_id, account_id, event_type, payload, created_at) VALUES"
                     " (%s, %s, 'invoice.created', %s, %s)", (str(uuid.uuid4()), account, payload, now))


def _writer(plan: Plan, counter: Any, barrier: Any, release: Any, ends: list[float], errors: list[str]) -> None:
    try:
        with psycopg.connect(plan.conninfo, autocommit=True) as conn:
            barrier.wait(BARRIER_TIMEOUT)
            while True:
                with counter.get_lock():
                    index = counter.value
                    counter.value += 1
                if index >= plan.messages:
                    break
                write_one(conn, plan, index)
            ends.append(time.monotonic())
            release.wait(BARRIER_TIMEOUT)  # keep the backend alive until the parent has read its CPU time
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        ends.append(time.monotonic())
        barrier.abort()


def process_main(plan: Plan, counter: Any, barrier: Any, release: Any, results: Any) -> None:
    """One writer process: T threads; reports (last commit time, errors), exits once released."""
    ends: list[float] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_writer, args=(plan, counter, barrier, release, ends, errors))
               for _ in range(plan.threads)]
    for thread in threads:
        thread.start()
    while len(ends) < len(threads) and any(thread.is_alive() for thread in threads):
        time.sleep(0.005)
    results.put((max(ends, default=time.monotonic()), errors))
    for thread in threads:
        thread.join()


def run_bare(ctx: Context, messages: int, expected: Expected, today: date) -> Throughput:
    truncate_all(ctx.conninfo)
    plan = make_plan(ctx, messages, expected, today)
    spawn = multiprocessing.get_context("spawn")
    counter, results, release = spawn.Value("q", 0), spawn.Queue(), spawn.Event()
    barrier = spawn.Barrier(ctx.processes * ctx.threads + 1)
    launched = time.monotonic()
    workers = [spawn.Process(target=process_main, args=(plan, counter, barrier, release, results))
               for _ in range(ctx.processes)]
    for process in workers:
        process.start()
    try:
        with Sampler(ctx.conninfo, ctx.redis_pid) as sampler:
            barrier.wait(BARRIER_TIMEOUT)
            begin = time.monotonic()
            reports = [results.get(timeout=max(600.0, messages / 10)) for _ in workers]
    finally:
        release.set()
        for process in workers:
            process.join(30)
    errors = [error for _, found in reports for error in found]
    seconds = max(end for end, _ in reports) - begin
    checks = check_onboarding(ctx, messages, expected, "bare unit of work")
    checks.equal("writer errors", [], errors)
    return Throughput("bare unit of work (psycopg)", messages, messages / seconds, seconds, begin - launched,
                      sampler.usage, checks)
