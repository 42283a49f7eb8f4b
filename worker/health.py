"""Health of the worker's dependencies, and a tiny HTTP endpoint that reports it.

``check_health`` answers within its timeout whatever the network does: each check runs in a daemon
thread, so a black-holed database host or a Redis that accepts but never replies cannot hang a
probe (the engine's and the client's own timeouts may be unset).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast

import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, text

from jobs.redaction import scrub_text
from models.tables.store import make_engine
from worker.logging import configure_logging
from worker.metrics import render
from worker.settings import Settings, get_settings

if TYPE_CHECKING:  # the client libraries load for the checks that use them (`billing simulate` runs none)
    from redis import Redis

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_SECONDS = 2.0
_REASON_MAX_CHARS = 200


@dataclass(frozen=True)
class HealthReport:
    """``checks`` maps each dependency to ``"ok"`` or a short reason; ``ok`` is true when all are."""

    ok: bool
    checks: dict[str, str] = field(default_factory=dict)


def _reason(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return scrub_text(f"{type(exc).__name__}: {first_line}".rstrip(": "))[:_REASON_MAX_CHARS]


class _Check:
    """One check running in a daemon thread; its result is ``"ok"``, a reason, or a timeout."""

    def __init__(self, name: str, probe: Callable[[], object]) -> None:
        self.result = "timeout"
        self._probe = probe
        self._thread = threading.Thread(target=self._run, name=f"health-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._probe()
        except Exception as exc:
            self.result = _reason(exc)
        else:
            self.result = "ok"

    def wait(self, deadline: float, timeout: float) -> str:
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return f"no answer within {timeout:g}s" if self._thread.is_alive() else self.result


def _ping_database(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _ping_redis(client: Redis, timeout: float) -> None:
    """One fresh connection, one attempt: the client's retries (seconds of backoff) would turn
    "connection refused" into a mere timeout. The client's pool is left untouched."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    pool = client.connection_pool
    settings = {**pool.connection_kwargs, "retry": Retry(NoBackoff(), 0)}
    settings.update(socket_connect_timeout=timeout, socket_timeout=timeout)
    connection = pool.connection_class(**settings)
    try:
        connection.connect()  # the handshake too: AUTH and SELECT fail here
        connection.send_command("PING")
        reply = connection.read_response()
        if reply not in (b"PONG", "PONG", True):
            raise RuntimeError(f"unexpected PING reply {reply!r}")
    finally:
        connection.disconnect()


def _ping_rabbitmq(url: str, timeout: float) -> None:
    """Open and close one AMQP connection (the handshake checks the credentials and the vhost)."""
    import pika

    parameters = pika.URLParameters(url)
    parameters.socket_timeout = parameters.blocked_connection_timeout = timeout
    parameters.stack_timeout = timeout
    pika.BlockingConnection(parameters).close()


def check_health(
    engine: Engine, redis_client: Redis | None, timeout: float = DEFAULT_TIMEOUT_SECONDS, *,
    rabbitmq_url: str | None = None,
) -> HealthReport:
    """Check the database, Redis (unless None) and RabbitMQ (if given) concurrently; never raises,
    returns within about ``timeout``."""
    deadline = time.monotonic() + timeout
    running = {"database": _Check("database", lambda: _ping_database(engine))}
    if redis_client is not None:
        running["redis"] = _Check("redis", lambda: _ping_redis(redis_client, timeout))
    if rabbitmq_url is not None:
        running["rabbitmq"] = _Check("rabbitmq", lambda: _ping_rabbitmq(rabbitmq_url, timeout))
    checks = {name: check.wait(deadline, timeout) for name, check in running.items()}
    return HealthReport(ok=all(result == "ok" for result in checks.values()), checks=checks)


def services(settings: Settings) -> tuple[Redis | None, str | None]:
    """The Redis client and the RabbitMQ URL that the configuration uses (None where it uses none)."""
    from redis import Redis

    rabbitmq = settings.broker_kind == "rabbitmq"
    redis_url = settings.redis_url if rabbitmq else settings.broker_redis_url
    client = Redis.from_url(redis_url) if settings.uses_redis else None
    if rabbitmq:
        return client, settings.broker_url
    return client, settings.exchange_url if settings.event_sink == "rabbitmq" else None


def check_configured(engine: Engine, settings: Settings, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> HealthReport:
    """``check_health`` of what the settings use: the database, and Redis and/or RabbitMQ."""
    client, rabbitmq_url = services(settings)
    return check_health(engine, client, timeout, rabbitmq_url=rabbitmq_url)


class _HealthServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], probe: Callable[[], HealthReport]) -> None:
        super().__init__(address, _HealthHandler)
        self.probe = probe


class _HealthHandler(BaseHTTPRequestHandler):
    """``GET /healthz`` (200 or 503 with the report as JSON) and ``GET /metrics``."""

    def do_GET(self) -> None:
        if self.path == "/healthz":
            report = self._report()
            status = HTTPStatus.OK if report.ok else HTTPStatus.SERVICE_UNAVAILABLE
            self._send(status, "application/json", json.dumps(asdict(report)).encode())
        elif self.path == "/metrics":
            self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, render())
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

    def _report(self) -> HealthReport:
        try:
            return cast(_HealthServer, self.server).probe()
        except Exception as exc:  # a probe should not raise; if it does, say so rather than hang up
            return HealthReport(ok=False, checks={"probe": _reason(exc)})

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Through structlog (JSON, redacted) instead of the stdlib's plain stderr line."""
        log.debug("health_http_request", request=format % args)


def serve_worker_endpoint() -> int:
    """``billing worker``'s ``/metrics`` (every worker process summed) and ``/healthz``; runs until killed.

    dramatiq's CLI forks a process for it (``worker.exposition.MetricsExposition.forks``) once the worker
    processes are up, and stops it with SIGTERM with them.
    """
    settings = get_settings()
    configure_logging(settings)
    engine = make_engine(settings.database_url)
    try:
        server = _HealthServer((settings.metrics_host, settings.metrics_port),
                               lambda: check_configured(engine, settings))
    except OSError as exc:  # the workers go on without it: dramatiq's CLI watches worker processes only
        log.error("worker_metrics_port_unavailable", port=settings.metrics_port, error=_reason(exc))
        engine.dispose()
        return 1
    log.info("worker_metrics_serving", port=settings.metrics_port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        engine.dispose()
    return 0


def serve_health(
    port: int, probe: Callable[[], HealthReport], host: str = "127.0.0.1"
) -> ThreadingHTTPServer | None:
    """Answer ``/healthz`` and ``/metrics`` from a daemon thread; port 0 turns it off.

    Returns the server (``shutdown()`` then ``server_close()`` stops it), or None when off.
    """
    if not port:
        return None
    server = _HealthServer((host, port), probe)
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server
