"""``billing simulate``'s cost follows the work in a scenario, not its length in time.

(a) one account with one monthly plan simulated for five years and for one day, alternately,
three times each; the ratio of the medians (target ≤ 3). (b) forty random multi-year scenarios
from fixed seeds (``tests.scenarios.random_scenarios``), one after the other; their total wall
time (target < 5 minutes). Every run is the real CLI in its own process, as the acceptance
runner calls it, so each figure includes the interpreter's start-up and the migration.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from tests.bench.checks import Checks
from tests.bench.processes import REPO
from tests.scenarios.random_scenarios import random_scenario

RANDOM_SCENARIOS = 40
RANDOM_SEED = 20261201
RANDOM_SPAN_DAYS = (2 * 365, 5 * 365)
REPEATS = 3


def one_account(until: str) -> dict[str, Any]:
    return {"settings": {"combine_invoices": True}, "until": until, "messages": [{
        "at": "2020-01-01T09:00:00Z", "type": "account.onboard", "body": {
            "account": {"id": "solo", "name": "Solo", "currency": "USD", "timezone": "Europe/Paris"},
            "start_date": "2020-01-01", "bill_day": 1,
            "subscriptions": [{"plan": "monthly", "amount": "10.00", "interval": "month", "interval_count": 1,
                               "timing": "advance", "proration": "daily"}]}}]}


ONE_DAY = one_account("2020-01-01")
FIVE_YEARS = one_account("2024-12-31")


@dataclass
class SimulateResult:
    one_day_seconds: list[float]
    five_years_seconds: list[float]
    five_years_invoices: int
    random_seconds: list[float]
    random_invoices: int
    random_rejections: int
    random_simulated_days: int
    checks: Checks = field(default_factory=lambda: Checks("simulate"))

    @property
    def ratio(self) -> float:
        return statistics.median(self.five_years_seconds) / statistics.median(self.one_day_seconds)

    @property
    def random_total_seconds(self) -> float:
        return sum(self.random_seconds)


def simulate(path: Path) -> tuple[float, dict[str, Any]]:
    """Wall seconds of `billing simulate PATH` and the document it printed (the bench's own
    ``BILLING_*`` variables, which point at its PostgreSQL, are not passed on)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("BILLING_")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "worker.cli", "simulate", str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    seconds = time.perf_counter() - started
    document: dict[str, Any] = json.loads(done.stdout)
    return seconds, document


def random_scenarios() -> list[dict[str, Any]]:
    rng = random.Random(RANDOM_SEED)
    low, high = RANDOM_SPAN_DAYS
    return [random_scenario(random.Random(rng.getrandbits(64)), min_span_days=low, max_span_days=high)
            for _ in range(RANDOM_SCENARIOS)]


def run_simulate() -> SimulateResult:
    with tempfile.TemporaryDirectory(prefix="billing-bench-simulate-") as folder:
        workdir = Path(folder)
        short, long = workdir / "one-day.json", workdir / "five-years.json"
        short.write_text(json.dumps(ONE_DAY), encoding="utf-8")
        long.write_text(json.dumps(FIVE_YEARS), encoding="utf-8")
        one_day: list[float] = []
        five_years: list[float] = []
        documents: list[dict[str, Any]] = []
        for _ in range(REPEATS):
            seconds, document = simulate(short)
            one_day.append(seconds)
            seconds, long_document = simulate(long)
            five_years.append(seconds)
            documents.append(long_document)
        scenarios = random_scenarios()
        random_seconds: list[float] = []
        random_documents: list[dict[str, Any]] = []
        days = 0
        for index, scenario in enumerate(scenarios):
            path = workdir / f"random-{index:02d}.json"
            path.write_text(json.dumps(scenario), encoding="utf-8")
            seconds, random_document = simulate(path)
            random_seconds.append(seconds)
            random_documents.append(random_document)
            first = scenario["messages"][0]["at"][:10]
            days += (date.fromisoformat(scenario["until"]) - date.fromisoformat(first)).days + 1
    result = SimulateResult(one_day, five_years, len(documents[-1]["invoices"]), random_seconds,
                            sum(len(d["invoices"]) for d in random_documents),
                            sum(len(d["rejected"]) for d in random_documents), days)
    checks = result.checks
    checks.equal("one day: invoices", 1, len(document["invoices"]))
    # 61: Paris is ahead of UTC, so its 1 January 2025 (the 61st month) begins before ``until`` ends.
    checks.equal("five years: one invoice a month", 61, result.five_years_invoices)
    checks.equal("five years: the same document every time", 1,
                 len({json.dumps(d["invoices"]) for d in documents}))
    checks.equal("random: one event per invoice", result.random_invoices,
                 sum(len(d["events"]) for d in random_documents))
    numbers = [invoice["number"] for d in random_documents for invoice in d["invoices"]]
    checks.equal("random: every scenario's invoice numbers unique", True,
                 all(len({i["number"] for i in d["invoices"]}) == len(d["invoices"]) for d in random_documents))
    checks.equal("random: some invoices at all", True, len(numbers) > 0)
    return result

