"""Running a scenario file through `billing simulate` in its own process, as the acceptance runner does."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import subprocess
import sys
from collections.abc import Sequence
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any


def simulate(path: Path, *, hourly: bool = False) -> dict[str, Any]:
    """The document `billing simulate [--hourly] PATH` prints."""
    command = [sys.executable, "-m", "worker.cli", "simulate", *(["--hourly"] if hourly else []), str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


PRELOAD = ["sqlalchemy", "sqlalchemy.orm", "alembic.command", "alembic.config", "dramatiq", "dramatiq.brokers.stub",
           "pydantic", "pydantic_settings", "structlog", "prometheus_client", "models.tables",
           "models.billing.composition"]
"""What a `billing simulate` process spends most of its start-up importing; none of it declares an actor."""


def _cli(argv: Sequence[str], out: str) -> None:
    """A forked child: `billing ARGV` with its stdout written to ``out``."""
    from worker.cli import main

    with open(out, "w", encoding="utf-8") as stream, contextlib.redirect_stdout(stream):
        code = main(list(argv))
    sys.exit(code)


class ForkedSimulator:
    """`billing simulate` in fresh processes forked from one that has already imported the heavy
    libraries: each run still gets its own broker, actors, database and clock (a simulation
    installs them once per process), without paying the interpreter's start-up again."""

    def __init__(self) -> None:
        self._context: ForkServerContext = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(PRELOAD)

    def run(self, jobs: Sequence[tuple[Path, bool]], workdir: Path) -> list[dict[str, Any]]:
        """Simulate each (scenario, hourly) at once, in parallel; their documents in the same order."""
        processes = []
        for index, (path, hourly) in enumerate(jobs):
            out = workdir / f"{path.stem}.{index}.{'hourly' if hourly else 'jumps'}.json"
            argv = ["simulate", *(["--hourly"] if hourly else []), str(path)]
            process = self._context.Process(target=_cli, args=(argv, str(out)))
            process.start()
            processes.append((process, out, argv))
        documents = []
        for process, out, argv in processes:
            process.join(timeout=300)
            if process.exitcode != 0:
                raise RuntimeError(f"billing {' '.join(argv)} exited {process.exitcode}")
            documents.append(json.loads(out.read_text(encoding="utf-8")))
        return documents
