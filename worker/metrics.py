"""Serving the metrics of ``jobs.metrics``, across every worker process.

``billing worker`` runs several dramatiq processes. Each increments its own counters, so they run
in prometheus_client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` (set by ``billing worker``
before any import of prometheus_client) holds one memory-mapped file per process, and one extra
process forked by dramatiq's CLI (``worker.exposition.MetricsExposition.forks``, as dramatiq's own
Prometheus middleware does) serves their sum on the metrics port. The directory must be empty when the
processes start; stale files would add an earlier run's counts.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, multiprocess, start_http_server

from jobs.metrics import REGISTRY

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

# The relay's webhook deliveries (only the relay sends them, so they live here, not in jobs). The
# endpoint label takes configured endpoint names only: a closed set chosen by the operator.
WEBHOOK_OUTCOMES: Final = ("delivered", "failed", "dead")
"""``failed``: an attempt failed and will be retried; ``dead``: the last one, retries are over."""
WEBHOOK_DELIVERIES: Final = Counter(
    "billing_webhook_deliveries_total", "Webhook delivery attempts, by configured endpoint and outcome.",
    ["endpoint", "outcome"], registry=REGISTRY,
)  # fmt: skip
WEBHOOK_PENDING: Final = Gauge(
    "billing_webhook_pending", "Webhook deliveries not delivered yet (pending or dead), by configured endpoint.",
    ["endpoint"], registry=REGISTRY, multiprocess_mode="mostrecent",
)  # fmt: skip


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
