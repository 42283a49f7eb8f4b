"""`make bench` at a tiny scale: every part runs against the real processes and its checks pass.

The figures themselves are not asserted (timing belongs to the benchmark); the amount of work is,
exactly: 20 and 200 billed accounts, 200 onboarding messages through each path, 40 latency probes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from tests.bench.processes import REPO

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(150)]


def _database_exists(name: str) -> bool:
    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def test_the_benchmark_runs_its_parts_and_writes_the_report(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    out, raw = tmp_path / "benchmarks.md", tmp_path / "bench.json"
    finished = subprocess.run(
        [sys.executable, "-m", "tests.bench.run", "--out", str(out), "--json", str(raw), "--accounts", "20,200",
         "--messages", "200", "--latency-seconds", "2", "--threads", "2", "--parts", "bill-run,onboarding,latency"],
        cwd=REPO, capture_output=True, text=True, timeout=140,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    results = json.loads(raw.read_text())

    assert [run["written"] for run in results["bill_runs"]] == [
        {"invoices": 20, "invoice_lines": 20, "outbox": 20, "balance_entries": 0},
        {"invoices": 200, "invoice_lines": 200, "outbox": 200, "balance_entries": 0},
    ]
    assert [run["copy_rows"] for run in results["bill_runs"]] == [60, 600]
    assert all(len(run["peak_rss_mb"]) == 2 for run in results["bill_runs"])  # both worker processes sampled
    for part in ("onboarding", "noop", "bare"):
        assert (results[part]["messages"], results[part]["ok"]) == (200, True)
    assert (results["latency"]["sent"], results["latency"]["received"]) == (40, 40)
    assert [check for check in results["checks"] if not check["ok"]] == []
    assert len(results["checks"]) == 58  # 13 per bill-run size, 13 onboarding, 1 no-op, 14 bare, 4 latency
    assert [target["verdict"] in {"PASS", "MISS"} for target in results["targets"]] == [True] * 7

    text = out.read_text()
    assert "python -m tests.bench.run --out" in text and "All 58 checks passed." in text
    for heading in ("## Targets", "## 1. Bill run", "## 2. Onboarding path", "## 3. Enqueue → event latency"):
        assert heading in text
    services = results["services"]
    assert services["database"].startswith("billing_bench_") and not _database_exists(services["database"])
    assert services["namespace"].startswith("billingbench-")
    assert list(redis.Redis.from_url(redis_url).scan_iter(match=f"{services['namespace']}:*")) == []
