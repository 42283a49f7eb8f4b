"""The worker's metrics fork gives up cleanly when its port is taken; the workers go on without it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import worker.health
from worker.health import serve_worker_endpoint
from worker.settings import Settings


def test_a_taken_port_ends_the_fork_with_exit_code_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        settings = Settings(metrics_port=port, database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}")
        monkeypatch.setattr(worker.health, "get_settings", lambda: settings)

        assert serve_worker_endpoint() == 1
