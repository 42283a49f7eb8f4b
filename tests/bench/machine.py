"""What the figures were measured on: hardware, versions, server settings, the checkout."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import psutil
import redis

from tests.bench.database import connect
from tests.bench.processes import REPO


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit} (with uncommitted changes)" if dirty else commit


def describe(conninfo: str, client: redis.Redis) -> dict[str, Any]:
    with connect(conninfo) as conn:
        pg = {name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
              for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers", "max_wal_size",
                           "checkpoint_timeout")}
    info = client.info("server")
    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(), "cpu_model": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(), "python": platform.python_version(),
        "postgresql": pg, "redis": str(info.get("redis_version")),
        "packages": {name: metadata.version(name) for name in ("dramatiq", "redis", "SQLAlchemy", "psycopg")},
        "commit": _git(), "load_average": [round(value, 2) for value in load],
    }
