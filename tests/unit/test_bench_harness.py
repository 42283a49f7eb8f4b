"""The benchmark's own judgement, without services: percentiles, targets, the report, the exit code.

A missed performance target is reported and exits 0; a failed correctness check exits 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.bench import report, run, targets
from tests.bench.checks import Checks
from tests.bench.latency import percentile
from tests.bench.results import Results
from tests.bench.sampler import Usage
from tests.bench.throughput import Throughput

MACHINE: dict[str, Any] = {
    "date": "2026-12-01 08:00 UTC", "cpus": 2, "cpu_model": "AMD EPYC", "memory_gib": 23.5, "os": "Linux",
    "python": "3.11.7", "redis": "7.0.15", "commit": "abc1234", "load_average": [0.1, 0.2, 0.3],
    "postgresql": {"server_version": "15.20", "fsync": "on", "synchronous_commit": "on", "shared_buffers": "128MB"},
    "packages": {"dramatiq": "2.2.1"},
}


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(600, 0, -1)]
    assert (percentile(values, 0.50), percentile(values, 0.99), percentile(values, 1.0)) == (300.0, 594.0, 600.0)
    assert percentile([7.0], 0.99) == 7.0


def test_targets_say_pass_or_miss_and_by_how_much() -> None:
    assert (targets.at_most("t", 90.0, 120.0, "s").verdict, targets.at_most("t", 130.0, 120.0, "s").margin) == (
        "PASS", "10.0 s over (8% of the limit)")
    ratio = targets.at_least_ratio("r", 0.23, 0.60)
    assert (ratio.verdict, ratio.margin) == ("MISS", "37 points below")
    shrink = targets.rss_growth(100.0, 95.0, 10_000, 100_000)
    assert (shrink.verdict, shrink.figure) == ("PASS", "100.0 → 95.0 MB (-5.0%)")
    assert targets.rss_growth(100.0, 111.0, 10_000, 100_000).verdict == "MISS"


def _results(*, check_ok: bool, per_second: float) -> Results:
    checks = Checks("onboarding 10")
    checks.equal("invoices", 10, 10 if check_ok else 9)
    usage = Usage(1.0, 0.0, {1: 80.0, 2: 81.0}, {"python": 0.5, "postgres": 0.2, "redis": 0.0, "kernel": 0.0})
    results = Results("python -m tests.bench.run", MACHINE, {"processes": 2, "threads": 8})
    results.onboarding = Throughput("billing worker, account.onboard", 10, per_second, 1.0, 0.5, usage, checks)
    bare_checks = Checks("bare unit of work 10")
    bare_checks.equal("invoices", 10, 10)
    results.bare = Throughput("bare unit of work (psycopg)", 10, 100.0, 0.1, 0.3, usage, bare_checks)
    return results


def test_the_report_keeps_hand_written_notes(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text(f"old figures\n{report.NOTES_MARKER}\n## Where the time goes\nkept as written\n")
    report.write(_results(check_ok=True, per_second=20.0), out)
    text = out.read_text()
    assert "old figures" not in text and text.endswith("## Where the time goes\nkept as written\n")
    assert "| onboarding msgs/s ÷ bare unit of work | 0.20 | ≥ 0.40 | **MISS** | 20 points below |" in text
    assert "| onboarding msgs/s ÷ bare unit of work (stretch) | 0.20 | ≥ 0.60 | **MISS** | 40 points below |" in text
    assert "All 2 checks passed." in text


@pytest.mark.parametrize(("check_ok", "expected"), [(True, 0), (False, run.EXIT_CHECK_FAILED)])
def test_only_a_failed_check_fails_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, check_ok: bool, expected: int
) -> None:
    monkeypatch.setattr(run, "benchmark", lambda *_: _results(check_ok=check_ok, per_second=20.0))  # a MISS
    assert run.main(["--out", str(tmp_path / "b.md"), "--logs", str(tmp_path / "logs")]) == expected
    assert (tmp_path / "b.md").exists()
