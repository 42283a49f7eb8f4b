"""Starting and stopping the product's processes (and the no-op worker) as subprocesses.

Each runs in its own process group with its output in a log file; readiness is dramatiq's own
"ready for action" line, once per worker process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
READY = "Worker process is ready for action."


@dataclass
class Started:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    offset: int = 0
    """Where this start's output begins in the (appended) log file."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self.offset)
            return log.read().decode("utf-8", errors="replace")


class ProcessFailed(RuntimeError):
    """A benchmarked process exited early or never became ready; the message quotes its log."""


def start(name: str, args: Sequence[str], env: dict[str, str], logs: Path) -> Started:
    """``python ARGS`` from the checkout, in its own process group, output appended to ``logs/NAME.log``."""
    log_path = logs / f"{name}.log"
    with log_path.open("ab") as log:
        offset = log.tell()
        popen = subprocess.Popen([sys.executable, *args], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    return Started(name, popen, log_path, offset)


def billing_worker(env: dict[str, str], logs: Path, *, processes: int, threads: int, name: str = "worker") -> Started:
    """``billing worker`` exactly as operators start it (it execs dramatiq on ``worker.actors:setup``)."""
    return start(name, ["-m", "worker.cli", "worker", "--processes", str(processes), "--threads", str(threads)],
                 env, logs)


def relay(env: dict[str, str], logs: Path) -> Started:
    return start("relay", ["-m", "worker.cli", "relay"], env, logs)


def wait_ready(started: Started, processes: int, timeout: float = 90.0) -> float:
    """Block until every worker process said it is ready; return the seconds it took."""
    begin = time.monotonic()
    while time.monotonic() - begin < timeout:
        if started.popen.poll() is not None:
            raise ProcessFailed(f"{started.name} exited with {started.popen.returncode}:\n{tail(started)}")
        if started.log_text().count(READY) >= processes:
            return time.monotonic() - begin
        time.sleep(0.05)
    raise ProcessFailed(f"{started.name} not ready after {timeout:.0f} s:\n{tail(started)}")


def tail(started: Started, lines: int = 30) -> str:
    return "\n".join(started.log_text().splitlines()[-lines:])


def worker_children(started: Started) -> list[psutil.Process]:
    """The dramatiq worker processes under a started ``billing worker`` (or dramatiq CLI)."""
    try:
        children: list[psutil.Process] = psutil.Process(started.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return children


def dramatiq_env(started: Started) -> dict[str, str]:
    """The ``dramatiq_*`` variables a running worker process really has (what tunes prefetch and polling)."""
    for child in worker_children(started):
        try:
            return {key: value for key, value in child.environ().items() if key.startswith("dramatiq_")}
        except psutil.Error:
            continue
    return {}


def stop(started: Started, timeout: float = 30.0) -> int:
    """SIGTERM (dramatiq requeues what it prefetched), then SIGKILL to the process group if it hangs."""
    if started.popen.poll() is None:
        started.popen.send_signal(signal.SIGTERM)
        try:
            started.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(started.pid, signal.SIGKILL)
            started.popen.wait(10)
    return started.popen.returncode
