"""Every metric the dashboards rely on exists with its labels, counts, and renders."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client import Counter, Gauge, Histogram

from jobs import metrics
from jobs.metrics import REGISTRY
from worker import metrics as worker_metrics
from worker.metrics import render, start_metrics_server


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


COUNTERS: list[tuple[Counter, str, dict[str, str]]] = [
    (metrics.MESSAGES, "billing_messages_total", {"type": "account.onboard", "outcome": "processed"}),
    (metrics.REJECTIONS, "billing_rejections_total", {"code": "bad_signature", "producer": "crm"}),
    (metrics.INVOICES, "billing_invoices_total", {"trigger": "onboarding"}),
    (metrics.INVOICE_AMOUNT, "billing_invoice_amount_minor_total", {"currency": "EUR"}),
    (
        metrics.BALANCE_LINES,
        "billing_balance_lines_total",
        {"producer": "support", "kind": "credit", "outcome": "pending_approval"},
    ),
    (
        metrics.BALANCE_AMOUNT,
        "billing_balance_amount_minor_total",
        {"producer": "support", "kind": "credit", "currency": "EUR"},
    ),
    (metrics.LIMIT_HITS, "billing_limit_hits_total", {"producer": "support", "kind": "credit", "limit": "per_line"}),
    (metrics.EVENTS_PUBLISHED, "billing_events_published_total", {}),
]


@pytest.mark.parametrize(("counter", "name", "labels"), COUNTERS, ids=[name for _, name, _ in COUNTERS])
def test_counters_increment_and_render(counter: Counter, name: str, labels: dict[str, str]) -> None:
    before = value(name, **labels)
    child = counter.labels(**labels) if labels else counter

    child.inc(3)

    assert value(name, **labels) == before + 3
    assert name.encode() in render()


GAUGES: list[tuple[Gauge, str, dict[str, str]]] = [
    (metrics.OUTBOX_LAG, "billing_outbox_lag_seconds", {}),
    (metrics.OUTBOX_PENDING, "billing_outbox_pending", {}),
    (metrics.QUEUE_DEPTH, "billing_queue_depth", {"queue": "onboarding"}),
    (metrics.DEAD_LETTERS, "billing_dead_letters", {"queue": "onboarding"}),
]


@pytest.mark.parametrize(("gauge", "name", "labels"), GAUGES, ids=[name for _, name, _ in GAUGES])
def test_gauges_hold_the_last_value(gauge: Gauge, name: str, labels: dict[str, str]) -> None:
    (gauge.labels(**labels) if labels else gauge).set(42)

    assert value(name, **labels) == 42


HISTOGRAMS: list[tuple[Histogram, str, dict[str, str]]] = [
    (metrics.MESSAGE_SECONDS, "billing_message_seconds", {"type": "balance_line.create"}),
    (metrics.BILL_RUN_SECONDS, "billing_bill_run_seconds", {}),
]


@pytest.mark.parametrize(("histogram", "name", "labels"), HISTOGRAMS, ids=[name for _, name, _ in HISTOGRAMS])
def test_histograms_count_observations(histogram: Histogram, name: str, labels: dict[str, str]) -> None:
    before = value(f"{name}_count", **labels)

    (histogram.labels(**labels) if labels else histogram).observe(0.25)

    assert value(f"{name}_count", **labels) == before + 1
    assert value(f"{name}_bucket", **labels, le="+Inf") >= 1


def test_invoice_triggers_are_exported_before_the_first_invoice() -> None:
    for trigger in metrics.INVOICE_TRIGGERS:
        assert REGISTRY.get_sample_value("billing_invoices_total", {"trigger": trigger}) is not None


def test_process_collectors_are_on_our_registry() -> None:
    text = render().decode()

    assert "python_info" in text
    assert "process_cpu_seconds_total" in text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body


def test_metrics_server_serves_the_registry_on_loopback() -> None:
    port = free_port()

    start_metrics_server(port)

    assert b"billing_messages_total" in fetch(f"http://127.0.0.1:{port}/metrics")


def test_port_zero_turns_the_server_off(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    fake: Callable[..., None] = lambda port, **_: started.append(port)  # noqa: E731
    monkeypatch.setattr(worker_metrics, "start_http_server", fake)

    start_metrics_server(0)

    assert started == []
