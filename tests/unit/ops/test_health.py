"""Health checks answer quickly and never raise, whether dependencies are up, down or silent."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import Engine, create_engine

from worker.health import HealthReport, check_health, serve_health

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
PASSWORD_CANARY = "hunter2-canary"


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'health.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture
def local_redis() -> Iterator[Redis]:
    client = Redis.from_url(LOCAL_REDIS)
    yield client
    client.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) and never answers: a hung dependency."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_healthy_dependencies(sqlite_engine: Engine, local_redis: Redis) -> None:
    report = check_health(sqlite_engine, local_redis)

    assert report == HealthReport(ok=True, checks={"database": "ok", "redis": "ok"})


def test_refused_connections_give_reasons_quickly() -> None:
    engine = create_engine(f"postgresql+psycopg://billing:{PASSWORD_CANARY}@127.0.0.1:1/billing")
    client = Redis(host="127.0.0.1", port=1)
    started = time.monotonic()

    report = check_health(engine, client)

    assert time.monotonic() - started < 3
    assert not report.ok
    assert report.checks["database"].startswith("OperationalError")
    assert report.checks["redis"].startswith("ConnectionError")
    assert PASSWORD_CANARY not in json.dumps(report.checks)
    engine.dispose()
    client.close()


def test_silent_dependencies_time_out(silent_port: int) -> None:
    engine = create_engine(f"postgresql+psycopg://billing:pw@127.0.0.1:{silent_port}/billing")
    client = Redis(host="127.0.0.1", port=silent_port)  # no socket timeout: would hang forever
    started = time.monotonic()

    report = check_health(engine, client, timeout=0.5)

    assert time.monotonic() - started < 2
    assert report == HealthReport(
        ok=False, checks={"database": "no answer within 0.5s", "redis": "no answer within 0.5s"}
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read()


def test_healthz_reports_real_dependencies_over_http(sqlite_engine: Engine, local_redis: Redis) -> None:
    port = free_port()
    server = serve_health(port, lambda: check_health(sqlite_engine, local_redis))
    assert server is not None
    try:
        status, content_type, body = get(f"http://127.0.0.1:{port}/healthz")
    finally:
        server.shutdown()
        server.server_close()

    assert server.server_address[0] == "127.0.0.1"
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"ok": True, "checks": {"database": "ok", "redis": "ok"}}


def test_healthz_is_503_when_unhealthy_and_serves_metrics() -> None:
    port = free_port()
    server = serve_health(port, lambda: HealthReport(ok=False, checks={"redis": "ConnectionError: refused"}))
    assert server is not None
    try:
        unhealthy = get(f"http://127.0.0.1:{port}/healthz")
        metrics = get(f"http://127.0.0.1:{port}/metrics")
        missing = get(f"http://127.0.0.1:{port}/nope")
    finally:
        server.shutdown()
        server.server_close()

    assert unhealthy[0] == 503
    assert json.loads(unhealthy[2])["checks"] == {"redis": "ConnectionError: refused"}
    assert metrics[0] == 200
    assert b"billing_messages_total" in metrics[2]
    assert missing[0] == 404


def test_a_raising_probe_is_reported_not_propagated() -> None:
    def broken() -> HealthReport:
        raise RuntimeError("probe bug")

    port = free_port()
    server = serve_health(port, broken)
    assert server is not None
    try:
        status, _, body = get(f"http://127.0.0.1:{port}/healthz")
    finally:
        server.shutdown()
        server.server_close()

    assert status == 503
    assert json.loads(body) == {"ok": False, "checks": {"probe": "RuntimeError: probe bug"}}


def test_port_zero_turns_the_server_off() -> None:
    assert serve_health(0, lambda: HealthReport(ok=True)) is None
