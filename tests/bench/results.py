"""Everything one run measured, the targets judged from it, and its JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.bench import targets
from tests.bench.bill_run import BillRunResult
from tests.bench.checks import Check
from tests.bench.latency import LatencyResult
from tests.bench.simulate import SimulateResult
from tests.bench.throughput import Throughput


@dataclass
class Results:
    command: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    bill_runs: list[BillRunResult] = field(default_factory=list)
    onboarding: Throughput | None = None
    noop: Throughput | None = None
    bare: Throughput | None = None
    latency: LatencyResult | None = None
    simulate: SimulateResult | None = None
    services: dict[str, str] = field(default_factory=dict)
    """The throwaway database and Redis namespace (gone when the run is over)."""

    def checks(self) -> list[Check]:
        parts: list[Any] = [*self.bill_runs, self.onboarding, self.noop, self.bare, self.latency, self.simulate]
        return [item for part in parts if part is not None for item in part.checks.items]

    def failures(self) -> list[Check]:
        return [item for item in self.checks() if not item.ok]

    @property
    def onboarding_vs_noop(self) -> float | None:
        if self.onboarding is None or self.noop is None:
            return None
        return self.onboarding.per_second / self.noop.per_second

    @property
    def onboarding_vs_bare(self) -> float | None:
        if self.onboarding is None or self.bare is None:
            return None
        return self.onboarding.per_second / self.bare.per_second

    def targets(self) -> list[targets.Target]:
        found: list[targets.Target] = []
        if self.bill_runs:
            found += _bill_run_targets(self.bill_runs)
        if self.onboarding_vs_bare is not None:
            found.append(targets.at_least_ratio("onboarding msgs/s ÷ bare unit of work", self.onboarding_vs_bare,
                                                targets.BARE_RATIO))
            found.append(targets.at_least_ratio("onboarding msgs/s ÷ bare unit of work (stretch)",
                                                self.onboarding_vs_bare, targets.BARE_RATIO_STRETCH))
        if self.latency is not None:
            found.append(targets.at_most(f"enqueue → event p99 at {self.latency.rate:g} msgs/s",
                                         self.latency.p("total", 0.99), targets.P99_MS, "ms", ".0f"))
        if self.simulate is not None:
            found += simulate_targets(self.simulate)
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.command, "machine": self.machine, "settings": self.settings, "services": self.services,
            "bill_runs": [_bill_run_json(run) for run in self.bill_runs],
            "onboarding": _throughput_json(self.onboarding), "noop": _throughput_json(self.noop),
            "bare": _throughput_json(self.bare),
            "ratios": {"onboarding_vs_noop": self.onboarding_vs_noop, "onboarding_vs_bare": self.onboarding_vs_bare},
            "latency": _latency_json(self.latency),
            "simulate": _simulate_json(self.simulate),
            "targets": [{"name": t.name, "figure": t.figure, "goal": t.goal, "verdict": t.verdict, "margin": t.margin}
                        for t in self.targets()],
            "checks": [{"part": c.part, "name": c.name, "expected": repr(c.expected), "actual": repr(c.actual),
                        "ok": c.ok} for c in self.checks()],
        }


def simulate_targets(part: SimulateResult) -> list[targets.Target]:
    return [
        targets.at_most("billing simulate: five years ÷ one day (one account, wall time)", part.ratio,
                        targets.SIMULATE_RATIO, "×", ".2f"),
        targets.at_most(f"billing simulate: {len(part.random_seconds)} random multi-year scenarios, total wall time",
                        part.random_total_seconds, targets.SIMULATE_RANDOM_SECONDS, "s"),
    ]


def _bill_run_targets(runs: list[BillRunResult]) -> list[targets.Target]:
    largest = max(runs, key=lambda run: run.accounts)
    found = [
        targets.at_most(f"bill run of {largest.accounts:,} accounts, wall time", largest.seconds,
                        targets.BILL_RUN_SECONDS, "s"),
        targets.at_least_ratio(f"bill run rows/s ÷ COPY rows/s ({largest.accounts:,} accounts)",
                               largest.copy_ratio, targets.COPY_RATIO),
        targets.at_most("peak RSS of any worker process", max(max(run.peak_rss_mb, default=0.0) for run in runs),
                        targets.PEAK_RSS_MB, "MB"),
    ]
    smallest = min(runs, key=lambda run: run.accounts)
    if smallest is not largest and smallest.peak_rss_mb and largest.peak_rss_mb:
        found.append(targets.rss_growth(max(smallest.peak_rss_mb), max(largest.peak_rss_mb), smallest.accounts,
                                        largest.accounts))
    return found


def _bill_run_json(run: BillRunResult) -> dict[str, Any]:
    return {
        "accounts": run.accounts, "seconds": run.seconds, "published_seconds": run.published_seconds,
        "ready_seconds": run.ready_seconds,
        "written": run.written, "rows": run.rows, "invoices_per_second": run.invoices_per_second,
        "rows_per_second": run.rows_per_second, "copy_rows": run.copy.rows,
        "copy_batch_rows_per_second": run.copy.batch_rows_per_second,
        "copy_one_txn_rows_per_second": run.copy.one_txn_rows_per_second,
        "copy_ratio": run.copy_ratio, "copy_one_txn_ratio": run.copy_one_txn_ratio,
        "peak_rss_mb": run.peak_rss_mb, "foreign_cores": run.usage.foreign_cores,
        "cpu_seconds": run.usage.cpu_seconds, "checkpoints": run.checkpoints,
        "copy_foreign_cores": run.copy.foreign_cores, "copy_checkpoints": run.copy.checkpoints, "ok": run.checks.ok,
    }


def _throughput_json(part: Throughput | None) -> dict[str, Any] | None:
    if part is None:
        return None
    return {"name": part.name, "messages": part.messages, "per_second": part.per_second, "seconds": part.seconds,
            "startup_seconds": part.startup_seconds, "enqueue_per_second": part.enqueue_per_second,
            "peak_rss_mb": list(part.usage.peak_rss_mb.values()), "foreign_cores": part.usage.foreign_cores,
            "cpu_seconds": part.usage.cpu_seconds, "ok": part.checks.ok}


def _latency_json(part: LatencyResult | None) -> dict[str, Any] | None:
    if part is None:
        return None
    return {"rate": part.rate, "sent": part.sent, "received": len(part.total_ms),
            "p50_ms": part.p("total", 0.50), "p99_ms": part.p("total", 0.99),
            "pickup_p50_ms": part.p("pickup", 0.50), "pickup_p99_ms": part.p("pickup", 0.99),
            "relay_interval_seconds": part.relay_interval_seconds, "foreign_cores": part.usage.foreign_cores,
            "ok": part.checks.ok}


def _simulate_json(part: SimulateResult | None) -> dict[str, Any] | None:
    if part is None:
        return None
    return {"one_day_seconds": part.one_day_seconds, "five_years_seconds": part.five_years_seconds,
            "ratio": part.ratio, "five_years_invoices": part.five_years_invoices,
            "random_seconds": part.random_seconds, "random_total_seconds": part.random_total_seconds,
            "random_invoices": part.random_invoices, "random_rejections": part.random_rejections,
            "random_simulated_days": part.random_simulated_days, "ok": part.checks.ok}
