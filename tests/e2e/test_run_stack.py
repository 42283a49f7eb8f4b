"""`billing run` (what `make run` starts) on a fresh folder: SQLite, and an embedded Redis when the
configured one does not answer. Following the README's rehearsal, the seed's account gives its
invoice of 70.00 and one invoice.created event."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "acme-onboard.json"


CONSOLE_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[\w+\s*\] ")
"""structlog's console renderer: ``2026-12-01T20:43:29.597477Z [info     ] event ...``."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str], list[str]]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BILLING_")}
    env.update({
        "BILLING_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there: embed one
        "BILLING_CLOCK_START": "2018-11-30T10:00:00Z",
        "BILLING_METRICS_PORT": str(free_port()),
        "BILLING_RELAY_INTERVAL_SECONDS": "0.05",
    })
    process = subprocess.Popen([sys.executable, "-m", "worker.cli", "run"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    yield process, env, output
    if process.poll() is None:
        process.kill()
        process.wait(10)


def read_until(process: subprocess.Popen[str], output: list[str], pattern: str, seconds: float = 60) -> re.Match[str]:
    assert process.stdout is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"{pattern!r} not printed; output so far:\n{''.join(output)}")


def events(url: str) -> list[dict[str, Any]]:
    entries = redis.Redis.from_url(url).xrange("billing:events:invoice")
    return [json.loads(fields[b"event"]) for _, fields in entries]


def test_make_run_shows_the_seed_invoice_and_its_event(
    stack: tuple[subprocess.Popen[str], dict[str, str], list[str]], tmp_path: Path
) -> None:
    process, env, output = stack
    url = read_until(process, output, r"broker\s+: an embedded Redis .* at (redis://\S+)").group(1)
    read_until(process, output, r"clock\s+: rehearsal, started at 2018-11-30T10:00:00")
    client_env = dict(env, BILLING_REDIS_URL=url)
    sent = subprocess.run([sys.executable, "-m", "worker.cli", "enqueue", "account.onboard", str(SEED)],
                          cwd=tmp_path, env=client_env, capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not events(url):
        time.sleep(0.2)
    published = events(url)
    assert len(published) == 1
    invoice = published[0]["data"]
    assert (invoice["account"], invoice["issue_date"], invoice["total"]) == ("acme", "2018-11-30", "70.00")
    assert [line["amount"] for line in invoice["lines"]] == ["10.00", "30.00", "30.00"]

    listed = subprocess.run([sys.executable, "-m", "worker.cli", "invoices", "--account", "acme", "--json"],
                            cwd=tmp_path, env=client_env, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(listed.stdout) == [invoice]
    assert "alembic" not in listed.stderr + listed.stdout

    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    logged = [line for line in "".join(output).splitlines() + rest.splitlines() if CONSOLE_LINE.match(line)]
    assert logged, "the stack logged nothing in the console format"
    foreign = [line for line in "".join(output).splitlines() + rest.splitlines()
               if line.startswith(("{", "[")) or "alembic" in line]
    assert not foreign, f"lines in another format than the console's: {foreign[:5]}"
    assert (tmp_path / ".billing" / "billing.sqlite3").stat().st_size > 0
    with pytest.raises(redis.ConnectionError):  # the embedded Redis went down with the stack
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
