"""What the end-to-end tests share: the environment of a real stack, the `billing` CLI, polling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Executable, text

SECRET = "e2e-stack-secret-0123456789abcdef"
PRODUCER_TYPES = ["account.onboard", "balance_line.create", "balance_line.reverse", "bill_run.trigger"]


def stack_environment(database_url: str, redis_url: str, namespace: str, **settings: str) -> dict[str, str]:
    """The process environment of a stack on these services, with one producer ``crm`` that may send anything."""
    producers = {"crm": {"keys": [{"id": "crm-1", "secret": SECRET}], "types": PRODUCER_TYPES}}
    env = {key: value for key, value in os.environ.items() if not key.startswith("BILLING_")}
    env.update({
        "BILLING_DATABASE_URL": database_url, "BILLING_REDIS_URL": redis_url, "BILLING_NAMESPACE": namespace,
        "BILLING_PRODUCERS_JSON": json.dumps({"producers": producers}), "BILLING_PRODUCER": "crm",
        "BILLING_PRODUCER_KEY_ID": "crm-1", "BILLING_PRODUCER_SECRET": SECRET, "BILLING_METRICS_PORT": "0",
        "BILLING_RELAY_INTERVAL_SECONDS": "0.05",
    })
    env.update({f"BILLING_{name.upper()}": value for name, value in settings.items()})
    return env


def billing(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one `billing` command to completion."""
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=check)


def onboarding(account_id: str) -> dict[str, Any]:
    """An onboarding started on the 5th two months back with bill day 15: a stub and two full periods."""
    today = datetime.now(UTC).date()
    start = (today.replace(day=1) - timedelta(days=40)).replace(day=5)
    return {"account": {"id": account_id, "name": f"Customer {account_id}", "currency": "USD", "timezone": "UTC"},
            "start_date": start.isoformat(), "bill_day": 15,
            "subscriptions": [{"plan": "pro-monthly", "amount": "30.00"}]}


def scalar(engine: Engine, sql: str | Executable) -> int:
    """One integer from a query (SQL text or a SQLAlchemy statement)."""
    with engine.connect() as connection:
        return int(connection.execute(text(sql) if isinstance(sql, str) else sql).scalar_one())


def wait_for(condition: Callable[[], bool], seconds: float = 60.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@contextmanager
def running(env: dict[str, str], log: Path, *commands: list[str], cwd: Path | None = None) -> Iterator[
        list[subprocess.Popen[bytes]]]:
    """`billing` processes (one per argument list) writing to ``log``, stopped (SIGTERM, then kill) on exit."""
    with log.open("ab") as out:
        started = [subprocess.Popen([sys.executable, "-m", "worker.cli", *args], env=env, stdout=out, stderr=out,
                                    cwd=cwd) for args in commands]
        try:
            yield started
        finally:
            for process in started:
                process.terminate()
            for process in started:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
