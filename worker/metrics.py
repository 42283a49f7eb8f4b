"""Prometheus metrics of the worker, on one registry of our own.

A private ``REGISTRY`` (not prometheus_client's global one) lets tests read exact values and keeps
third-party collectors out of our scrape. Label values come from small closed sets (message types,
outcomes, producers, currencies, queues), never from ids, so the number of series stays bounded.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)

# The `*_created` series double the scrape and no dashboard reads them (the function is unannotated).
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY: Final = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

#: Values of ``outcome`` on ``billing_messages_total``.
MESSAGE_OUTCOMES: Final = ("processed", "duplicate", "rejected", "retried", "quarantined")
#: Values of ``trigger`` on ``billing_invoices_total``.
INVOICE_TRIGGERS: Final = ("onboarding", "bill_run")
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
    "billing_limit_hits_total", "Producer limits reached (per line, per account per day, approval).",
    ["producer", "limit"], registry=REGISTRY,
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
OUTBOX_LAG: Final = Gauge(
    "billing_outbox_lag_seconds", "Age of the oldest unsent outbox row (0 when none).", registry=REGISTRY
)
OUTBOX_PENDING: Final = Gauge("billing_outbox_pending", "Unsent outbox rows.", registry=REGISTRY)
QUEUE_DEPTH: Final = Gauge("billing_queue_depth", "Messages waiting, by queue.", ["queue"], registry=REGISTRY)
DEAD_LETTERS: Final = Gauge(
    "billing_dead_letters", "Dead-lettered messages kept in the database, by queue.", ["queue"],
    registry=REGISTRY,
)  # fmt: skip

for _trigger in INVOICE_TRIGGERS:  # closed set: export zeros so rate() works before the first invoice
    INVOICES.labels(trigger=_trigger)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` from a daemon thread; port 0 turns it off.

    Loopback by default: the endpoint is unauthenticated. Pass ``host="0.0.0.0"`` where a scraper
    runs on another host or container.
    """
    if port:
        start_http_server(port, addr=host, registry=REGISTRY)


def render() -> bytes:
    """The registry in Prometheus' text format (for ``/metrics`` on the health server and for tests)."""
    return generate_latest(REGISTRY)
