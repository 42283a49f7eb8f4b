"""Long-running processes: the dramatiq worker, the outbox relay, and `billing run` that starts all.

`billing run` is the zero-configuration path: it migrates the default SQLite database, uses the
local Redis (or starts an embedded one when nothing answers), and supervises one worker, one
relay and one scheduler until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import redis
import structlog

from jobs.clock import clock_for
from jobs.routes import QUEUES
from models.migrations.runner import migrate
from models.tables.store import make_engine, make_session_factory
from worker import gauges
from worker.health import check_configured, serve_health
from worker.metrics import prepare_multiprocess
from worker.outbox import NullPublisher, Publisher, RabbitmqExchangePublisher, RedisStreamPublisher, run
from worker.redis_server import answers, start_embedded
from worker.settings import DEFAULT_HOME, Settings, get_settings
from worker.webhooks import WebhookSink, load_endpoints, start_delivery

log = structlog.get_logger(__name__)


def stream_key() -> str:
    settings = get_settings()
    return f"{settings.namespace}:{settings.events_stream}"


def worker_environment(settings: Settings, threads: int, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of dramatiq's CLI for ``billing worker``: ``base`` with our defaults filled in."""
    env = dict(base)
    # dramatiq reads these two from its own variables; ours win unless those are set explicitly.
    env.setdefault("dramatiq_worker_timeout", str(settings.worker_idle_poll_ms))  # p99 pick-up ~64 ms, not ~570
    if settings.worker_prefetch:
        env.setdefault("dramatiq_queue_prefetch", str(settings.worker_prefetch))
    # A connection per thread stays open; with fewer, every transaction beyond the pool forks a server process.
    env.setdefault("BILLING_DATABASE_POOL_SIZE", str(threads + 2))
    return env


def run_worker(*, processes: int, threads: int, queues: list[str] | None) -> int:
    """Replace this process with dramatiq's CLI, which calls ``worker.actors.setup`` in each process."""
    settings = get_settings()
    env = worker_environment(settings, threads, os.environ)
    prepare_multiprocess(env, settings.metrics_port)  # every worker process' counters, summed on one port
    argv = [sys.executable, "-m", "worker.dramatiq_cli", "worker.actors:setup", "--skip-logging",
            "--processes", str(processes), "--threads", str(threads), "--queues", *(queues or QUEUES)]
    os.execvpe(sys.executable, argv, env)  # noqa: S606 - our own interpreter, fixed arguments
    return 0  # pragma: no cover - exec does not return


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def event_publisher(settings: Settings) -> Publisher:
    """The primary event sink the settings name (``BILLING_EVENT_SINK``)."""
    if settings.event_sink == "rabbitmq":
        if settings.exchange_url is None:
            raise ValueError("BILLING_EVENT_SINK=rabbitmq needs BILLING_EVENTS_AMQP_URL or an amqp:// "
                             "BILLING_BROKER_URL")
        return RabbitmqExchangePublisher(settings.exchange_url, settings.events_exchange)
    if settings.event_sink == "none":
        return NullPublisher()
    return RedisStreamPublisher(redis.Redis.from_url(settings.redis_url), stream_key(), settings.events_maxlen)


def sink_description(settings: Settings) -> str:
    if settings.event_sink == "rabbitmq":
        return f"RabbitMQ topic exchange {settings.events_exchange!r} (routing key = event type)"
    if settings.event_sink == "none":
        return "no primary sink (webhooks only)"
    return f"Redis Stream {stream_key()!r}"


def run_relay() -> int:
    """Publish outbox events until SIGTERM, deliver webhooks; serves /healthz and /metrics on the metrics port."""
    settings = get_settings()
    clock = clock_for(settings.clock_start, settings.clock_started_at)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    publisher = event_publisher(settings)
    endpoints = load_endpoints(settings)
    sink = WebhookSink(endpoints, settings.webhook_retry_seconds) if endpoints else None
    server = serve_health(settings.metrics_port, lambda: check_configured(engine, settings), settings.metrics_host)
    stop = threading.Event()
    _stop_on_signals(stop)
    log.info("relay_started", sink=sink_description(settings), broker=settings.broker_kind,
             webhooks=[endpoint.name for endpoint in endpoints])
    threading.Thread(target=gauges.run, args=(gauges.depth_reader(settings), sessions, stop), daemon=True,
                     name="gauges").start()
    if sink is not None:
        start_delivery(sessions, sink, settings, stop)
    run(sessions, publisher, source=settings.event_source, batch_size=settings.relay_batch_size,
        interval=settings.relay_interval_seconds, stop=stop, clock=clock, invoice_prefix=settings.invoice_prefix,
        fanout=sink, linger=settings.relay_linger_seconds)
    if server is not None:
        server.shutdown()
    return 0


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "worker.cli", *args], env=env)


def run_stack() -> int:
    """Everything on one machine with embedded defaults, until Ctrl-C."""
    settings = get_settings()
    DEFAULT_HOME.mkdir(exist_ok=True)
    migrate(settings.database_url)
    env = dict(os.environ)
    env["BILLING_LOCAL_PRODUCER"] = "true"  # the one-machine try-out may create the development producer
    embedded = None
    redis_url = settings.redis_url
    if settings.uses_redis and not answers(redis_url):
        embedded, redis_url = start_embedded(Path(DEFAULT_HOME) / "redis")
        env["BILLING_REDIS_URL"] = redis_url
    env.setdefault("BILLING_LOG_FORMAT", "console")
    if settings.clock_start is not None and settings.clock_started_at is None:
        # One shared origin, so worker, relay and scheduler agree on the rehearsal's time.
        env["BILLING_CLOCK_STARTED_AT"] = datetime.now(UTC).isoformat()
    prepare_multiprocess(env, settings.metrics_port)  # one shared directory: the relay serves everyone's sum
    children = [
        _spawn(["worker", "--processes", "1", "--threads", "4"], {**env, "BILLING_METRICS_PORT": "0"}),
        _spawn(["relay"], env),
        _spawn(["scheduler"], env),
    ]
    _banner(settings.database_url, redis_url, embedded is not None)
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        while not stop.is_set() and all(child.poll() is None for child in children):
            stop.wait(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded is not None:
            embedded.terminate()
            embedded.wait(5)
    return 0


def _banner(database_url: str, redis_url: str, embedded: bool) -> None:
    settings = get_settings()
    where = "an embedded Redis (nothing answered on the configured URL)" if embedded else "Redis"
    port = settings.metrics_port
    clock = (f"  clock    : rehearsal, started at {settings.clock_start.isoformat()} (BILLING_CLOCK_START)\n"
             if settings.clock_start else "")
    rabbitmq = settings.broker_kind == "rabbitmq"
    broker = (f"RabbitMQ at {make_url_safe(settings.broker_url or '')}" if rabbitmq
              else f"{where} at {settings.broker_redis_url if not embedded else redis_url}")
    events = sink_description(settings) + (f" on {redis_url}" if settings.event_sink == "redis" else "")
    webhooks = ", ".join(endpoint.name for endpoint in load_endpoints(settings)) or "none configured"
    prefix = "" if rabbitmq or not embedded else f"BILLING_REDIS_URL={redis_url} "
    look = (f"  redis-cli -u {redis_url} XRANGE {stream_key()} - +\n" if settings.event_sink == "redis" else "")
    print(
        f"""
billing worker stack is running (Ctrl-C stops it)
  database : {database_url}
  broker   : {broker}
  events   : {events}
  webhooks : {webhooks}
  health   : http://127.0.0.1:{port}/healthz   metrics: http://127.0.0.1:{port}/metrics
{clock}
Send the seed's account from another terminal:
  {prefix}.venv/bin/billing enqueue account.onboard examples/acme-onboard.json
then look at it:
  {prefix}.venv/bin/billing status
{look}""",
        flush=True,
    )


def make_url_safe(url: str) -> str:
    """A URL without its password, for printing."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
