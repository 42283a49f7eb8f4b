"""The counters of every `billing worker` process, summed and served over HTTP on the metrics port.

Two dramatiq worker processes handle the lines; the process dramatiq's CLI forks for
``MetricsExposition`` serves their sum. Exact values: a counter seen by one process only would show
up short.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from jobs.signer import Signer
from tests.e2e.stack import running
from tests.integration.producers import CRM_SECRET, line, onboarding, producers
from worker.broker import build_broker
from worker.client import send
from worker.settings import Settings

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


@pytest.fixture
def worker(clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str,
           tmp_path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("BILLING_") and key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"BILLING_DATABASE_URL": pg_url, "BILLING_REDIS_URL": redis_url, "BILLING_NAMESPACE": redis_namespace,
                "BILLING_PRODUCERS_JSON": json.dumps({"producers": producers()}), "BILLING_METRICS_PORT": str(port),
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})  # empty, and removed with tmp_path
    (tmp_path / "metrics").mkdir()
    with running(env, tmp_path / "worker.log", ["worker", "--processes", "2", "--threads", "2"], cwd=tmp_path):
        yield port, {"namespace": redis_namespace, "redis_url": redis_url}


def test_the_counters_of_every_worker_process_are_summed_on_the_metrics_port(
    worker: tuple[int, dict[str, Any]],
) -> None:
    port, where = worker
    wait_for(lambda: value(scrape(port), "billing_worker_processes") == 2)
    broker = build_broker(Settings(redis_url=where["redis_url"], namespace=where["namespace"]), kind="redis")
    signer = Signer("crm", "crm-2", CRM_SECRET.encode())
    now = datetime.now(UTC)
    send(broker, "account.onboard", onboarding("acme", start=now.date().isoformat()), signer, now=now)
    amounts = ["1.00", "2.00", "3.00", "4.00", "5.00", "6.00", "7.00", "8.00"]
    for n, amount in enumerate(amounts):
        send(broker, "balance_line.create", line(f"c-{n}", amount), signer, now=now)
    for n in range(2):
        send(broker, "balance_line.create", line(f"big-{n}", "150.00"), signer, now=now)
    send(broker, "balance_line.create", line("ref-1", "1.00", kind="referral"), signer, now=now)

    def settled() -> bool:
        samples = scrape(port)
        return (value(samples, "billing_messages_total", type="balance_line.create", outcome="processed") == 8
                and value(samples, "billing_messages_total", type="balance_line.create", outcome="rejected") == 3)

    wait_for(settled)
    samples = scrape(port)
    assert value(samples, "billing_worker_processes") == 2
    assert value(samples, "billing_balance_lines_total", producer="crm", kind="credit", outcome="accepted") == 8
    assert value(samples, "billing_balance_lines_total", producer="crm", kind="credit", outcome="rejected") == 2
    assert value(samples, "billing_balance_lines_total", producer="crm", kind="referral", outcome="rejected") == 1
    assert value(samples, "billing_balance_amount_minor_total", producer="crm", kind="credit", currency="USD") == 3600
    assert value(samples, "billing_limit_hits_total", producer="crm", kind="credit", limit="per_line") == 2
    assert value(samples, "billing_rejections_total", code="limit_exceeded", producer="crm") == 2
    assert value(samples, "billing_messages_total", type="balance_line.create", outcome="processed") == 8
    assert value(samples, "billing_messages_total", type="account.onboard", outcome="processed") == 1
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert json.loads(response.read()) == {"ok": True, "checks": {"database": "ok", "redis": "ok"}}
