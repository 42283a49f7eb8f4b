"""Prometheus metrics of the worker, on one registry of our own, across every worker process.

A private ``REGISTRY`` (not prometheus_client's global one) lets tests read exact values and keeps
third-party collectors out of our scrape. Label values come from small closed sets (message types,
outcomes, configured producers, kinds, currencies, queues), never from ids or from what an
unauthenticated sender wrote, so the number of series stays bounded.

``billing worker`` runs several dramatiq processes. Each increments its own counters, so they run
in prometheus_client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` (set by ``billing worker``
before any import of prometheus_client) holds one memory-mapped file per process, and one extra
process forked by dramatiq's CLI (``MetricsExposition.forks``, as dramatiq's own Prometheus
middleware does) serves their sum on the metrics port. The directory must be empty when the
processes start; stale files would add an earlier run's counts.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Collection, MutableMapping
from pathlib import Path
from typing import Final

import dramatiq
from dramatiq.middleware import Middleware
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
)

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN: Final = "unknown"

# The `*_created` series double the scrape and no dashboard reads them (the function is unannotated).
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY: Final = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

#: Values of ``outcome`` on ``billing_messages_total``.
MESSAGE_OUTCOMES: Final = ("processed", "duplicate", "rejected", "failed", "quarantined")
"""``failed``: a transient fault (database or broker); the attempt is retried with backoff, or dead-lettered."""
#: Values of ``trigger`` on ``billing_invoices_total``.
INVOICE_TRIGGERS: Final = ("onboarding", "bill_run")
#: Values of ``outcome`` on ``billing_bill_runs_total``.
BILL_RUN_OUTCOMES: Final = ("finished", "finished_with_failures", "failed")
"""``finished_with_failures``: some accounts failed (``billing status`` says why); ``failed``: the fan-out did."""
#: Values of ``outcome`` on ``billing_balance_lines_total``.
BALANCE_LINE_OUTCOMES: Final = (
    "accepted",
    "pending_approval",
    "rejected",
    "approved",
    "declined",
    "reversed",
)

MESSAGES: Final = Counter(
    "billing_messages_total", "Messages handled, by type and outcome.", ["type", "outcome"], registry=REGISTRY
)
REJECTIONS: Final = Counter(
    "billing_rejections_total", "Rejected messages, by reason code and producer.", ["code", "producer"],
    registry=REGISTRY,
)  # fmt: skip
INVOICES: Final = Counter(
    "billing_invoices_total", "Invoices issued, by what triggered them.", ["trigger"], registry=REGISTRY
)
INVOICE_AMOUNT: Final = Counter(
    "billing_invoice_amount_minor_total", "Invoice totals in minor units, by currency.", ["currency"],
    registry=REGISTRY,
)  # fmt: skip
BALANCE_LINES: Final = Counter(
    "billing_balance_lines_total", "Balance lines, by producer, kind and outcome.",
    ["producer", "kind", "outcome"], registry=REGISTRY,
)  # fmt: skip
BALANCE_AMOUNT: Final = Counter(
    "billing_balance_amount_minor_total", "Accepted balance-line amounts in minor units (absolute values).",
    ["producer", "kind", "currency"], registry=REGISTRY,
)  # fmt: skip
LIMIT_HITS: Final = Counter(
    "billing_limit_hits_total",
    "Producer limits reached (per_line, per_account_day, rate_per_minute; approval_above holds a line).",
    ["producer", "kind", "limit"], registry=REGISTRY,
)  # fmt: skip
EVENTS_PUBLISHED: Final = Counter(
    "billing_events_published_total", "Invoice events appended to the stream by the relay.", registry=REGISTRY
)
MESSAGE_SECONDS: Final = Histogram(
    "billing_message_seconds", "Time to handle one message, by type.", ["type"], registry=REGISTRY
)
BILL_RUN_SECONDS: Final = Histogram(
    "billing_bill_run_seconds", "Duration of a whole bill run.", registry=REGISTRY,
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, float("inf")),
)  # fmt: skip
BILL_RUNS: Final = Counter(
    "billing_bill_runs_total", "Bill runs that ended, by outcome.", ["outcome"], registry=REGISTRY
)
BILL_RUN_FAILED_ACCOUNTS: Final = Counter(
    "billing_bill_run_failed_accounts_total", "Accounts that failed in bill runs that finished.", registry=REGISTRY
)
# Gauges say how they combine across processes (ignored in a single process).
BILL_RUN_LAST_FINISHED: Final = Gauge(
    "billing_bill_run_last_finished_timestamp_seconds",
    "Unix time (wall clock, also in rehearsals) at which the last bill run finished; 0 until one does.",
    registry=REGISTRY, multiprocess_mode="max",
)  # fmt: skip
OUTBOX_LAG: Final = Gauge(
    "billing_outbox_lag_seconds", "Age of the oldest unsent outbox row (0 when none).", registry=REGISTRY,
    multiprocess_mode="mostrecent",
)  # fmt: skip
OUTBOX_PENDING: Final = Gauge(
    "billing_outbox_pending", "Unsent outbox rows.", registry=REGISTRY, multiprocess_mode="mostrecent"
)
QUEUE_DEPTH: Final = Gauge(
    "billing_queue_depth", "Messages waiting, by queue.", ["queue"], registry=REGISTRY, multiprocess_mode="mostrecent"
)
DEAD_LETTERS: Final = Gauge(
    "billing_dead_letters", "Dead-lettered messages kept in the database, by queue.", ["queue"],
    registry=REGISTRY, multiprocess_mode="mostrecent",
)  # fmt: skip
WORKER_PROCESSES: Final = Gauge(
    "billing_worker_processes", "Worker processes alive whose counters this endpoint sums.", registry=REGISTRY,
    multiprocess_mode="livesum",
)  # fmt: skip

for _trigger in INVOICE_TRIGGERS:  # closed set: export zeros so rate() works before the first invoice
    INVOICES.labels(trigger=_trigger)
for _outcome in BILL_RUN_OUTCOMES:
    BILL_RUNS.labels(outcome=_outcome)


def producer_label(name: str | None, configured: Collection[str]) -> str:
    """A producer as a label value: its name when configured, else ``unknown`` (a closed set)."""
    return name if name is not None and name in configured else UNKNOWN


def multiprocess_dir() -> str | None:
    """The multiprocess directory this process writes to and reads from, or None (single process)."""
    return os.environ.get(MULTIPROC_ENV) or None


def exposition_registry() -> CollectorRegistry:
    """What ``/metrics`` serves: our registry, or the sum of every process' files in multiprocess mode."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


def start_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` from a daemon thread; port 0 turns it off.

    Loopback by default: the endpoint is unauthenticated. Pass ``host="0.0.0.0"`` where a scraper
    runs on another host or container.
    """
    if port:
        start_http_server(port, addr=host, registry=exposition_registry())


def render() -> bytes:
    """``/metrics`` in Prometheus' text format (the health server, the worker's exposition, tests)."""
    return generate_latest(exposition_registry())


def prepare_multiprocess(env: MutableMapping[str, str], port: int) -> str | None:
    """Give the processes about to start (``env``) an empty multiprocess directory; return its path.

    Nothing to do with the metrics port off (no scrape, nothing to sum) or when the caller chose a
    directory already (``billing run`` shares one between its worker, relay and scheduler and empties
    it itself; a container sets an empty volume). Otherwise one directory per user and port, emptied
    here: two workers on one host need two ports anyway.
    """
    if not port or env.get(MULTIPROC_ENV):
        return env.get(MULTIPROC_ENV) or None
    path = Path(tempfile.gettempdir()) / f"billing-metrics-{os.getuid()}-{port}"
    empty_directory(path)
    env[MULTIPROC_ENV] = str(path)
    return str(path)


def empty_directory(path: Path) -> None:
    """Create ``path`` or remove the metric files an earlier run left in it."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


class MetricsExposition(Middleware):
    """Counts live worker processes and has dramatiq's CLI fork one process serving their sum.

    ``forks`` is read by dramatiq's CLI in its first worker process; the forked function
    (``worker.health.serve_worker_endpoint``) answers ``/metrics`` and ``/healthz`` on ``port``.
    Without a multiprocess directory there is nothing to sum, and no fork.
    """

    def __init__(self, port: int) -> None:
        self.port = port

    @property
    def forks(self) -> list[Callable[[], int]]:
        if not self.port or multiprocess_dir() is None:
            return []
        from worker.health import serve_worker_endpoint

        return [serve_worker_endpoint]

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        WORKER_PROCESSES.set(1)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        path = multiprocess_dir()
        if path is not None:
            multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]
