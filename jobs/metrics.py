"""The worker's Prometheus metrics, on one registry of our own.

A private ``REGISTRY`` (not prometheus_client's global one) lets tests read exact values and keeps
third-party collectors out of our scrape. Label values come from small closed sets (message types,
outcomes, configured producers, kinds, currencies, queues), never from ids or from what an
unauthenticated sender wrote, so the number of series stays bounded. Handlers count here; how the
counts are served (one process or the sum of several) is the worker's business
(``worker.metrics``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

UNKNOWN: Final = "unknown"

# The `*_created` series double the scrape and no dashboard reads them (the function is unannotated).
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY: Final = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

#: Values of ``trigger`` on ``billing_invoices_total``.
INVOICE_TRIGGERS: Final = ("onboarding", "bill_run")
#: Values of ``outcome`` on ``billing_bill_runs_total``.
BILL_RUN_OUTCOMES: Final = ("finished", "finished_with_failures", "failed")
"""``finished_with_failures``: some accounts failed (``billing status`` says why); ``failed``: the fan-out did."""

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
    "Producer limits reached (per_line, per_account_day, rate_per_minute; approval_above holds a line or a reversal).",
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


