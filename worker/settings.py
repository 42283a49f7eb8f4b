"""The worker's settings, read from the environment (prefix ``BILLING_``) once.

They extend the job settings (``jobs.settings.JobSettings``) with what only the process shell
needs: where the database, the broker and the event sinks are, the broker's limits, ports and
logging. Defaults run on a fresh machine with nothing configured: a SQLite file in ``.billing/`` and
the local Redis (or an embedded one, see ``worker.redis_server``). Production sets
``BILLING_DATABASE_URL`` and ``BILLING_REDIS_URL``, or ``BILLING_BROKER_URL=amqp://...`` for RabbitMQ.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field
from pydantic_settings import SettingsConfigDict

from jobs.settings import DEFAULT_HOME, JobSettings

__all__ = ["DEFAULT_HOME", "Settings", "get_settings"]


class Settings(JobSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", frozen=True, extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_HOME / 'billing.sqlite3'}",
        description="SQLAlchemy URL; PostgreSQL (postgresql+psycopg://...) in production.",
    )
    database_pool_size: int = Field(
        default=5, ge=1,
        description="Database connections a process keeps open (10 more open for bursts); `billing worker` "
                    "makes it its --threads + 2 unless this is set.",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Broker and event stream; when nothing answers there, `billing run` embeds one.",
    )
    broker_url: str | None = Field(
        default=None,
        description="The message broker: amqp://user:password@host:5672/vhost selects RabbitMQ (durable queues, "
        "persistent messages, publisher confirms); unset (or redis://...) means Redis at redis_url.",
    )
    namespace: str = Field(default="billing", description="Prefix of every Redis key the worker uses.")
    event_sink: Literal["redis", "rabbitmq", "none"] = Field(
        default="redis",
        description="Where the relay publishes every event before it marks it sent: the Redis Stream, the "
        "RabbitMQ topic exchange events_exchange (on events_amqp_url), or none (webhooks only).",
    )
    events_exchange: str = Field(default="billing.events", description="RabbitMQ topic exchange of events.")
    events_amqp_url: str | None = Field(
        default=None, description="RabbitMQ of the event exchange; default: broker_url when that is amqp://."
    )
    webhooks_file: Path | None = Field(
        default=None, description="JSON file of webhook endpoints: {\"endpoints\": [{name, url, secret, types?}]}."
    )
    webhooks_json: str | None = Field(default=None, description="The same document inline (tests, containers).")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="One delivery attempt's HTTP timeout.")
    webhook_retry_seconds: float = Field(
        default=3 * 24 * 3600, gt=0, description="How long a delivery is retried before it is dead-lettered."
    )
    webhook_min_backoff_seconds: float = Field(default=5.0, gt=0)
    webhook_max_backoff_seconds: float = Field(default=3600.0, gt=0)
    events_stream: str = Field(default="events:invoice", description="Redis Stream of invoice events.")
    events_maxlen: int = Field(default=1_000_000, description="Approximate cap of the event stream.")
    max_retries: int = Field(default=5, ge=0)
    min_backoff_ms: int = Field(default=1_000, ge=1)
    max_backoff_ms: int = Field(default=300_000, ge=1)
    time_limit_ms: int = Field(default=120_000, ge=1_000)
    max_age_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=1_000)
    heartbeat_timeout_ms: int = Field(default=15_000, ge=1_000)
    worker_idle_poll_ms: int = Field(
        default=100, ge=10, description="dramatiq's idle poll (its worker_timeout): the latency floor when idle."
    )
    worker_prefetch: int = Field(
        default=0, ge=0, description="Messages a worker process holds per queue; 0 = dramatiq's 2 x threads."
    )
    maintenance_chance: int = Field(default=50_000, ge=1, le=1_000_000)
    scheduler_interval_seconds: int = Field(default=3600, ge=1)
    relay_batch_size: int = Field(default=500, ge=1)
    relay_interval_seconds: float = Field(default=0.2, gt=0)
    relay_linger_seconds: float = Field(
        default=0.05, ge=0,
        description="Under a steady stream, how long the relay gathers events between rounds (0: a round per commit).",
    )
    clock_start: AwareDatetime | None = Field(
        default=None,
        description="Rehearsal only: the stack's clock starts at this instant (e.g. 2018-11-30T10:00:00Z) "
        "and runs at real speed; billing dates follow it, signatures stay on real time.",
    )
    clock_started_at: AwareDatetime | None = Field(
        default=None, description="The real instant at which clock_start held (set by `billing run`)."
    )
    metrics_port: int = Field(default=9464, ge=0, description="Prometheus endpoint; 0 turns it off.")
    metrics_host: str = Field(
        default="127.0.0.1", description="Where /metrics and /healthz listen (unauthenticated: 0.0.0.0 only in a "
        "private network, e.g. a container scraped by Prometheus)."
    )
    log_format: str = Field(default="json", pattern="^(json|console)$")
    log_level: str = Field(default="INFO")


    @property
    def broker_kind(self) -> Literal["redis", "rabbitmq"]:
        """``rabbitmq`` when ``broker_url`` is an AMQP URL, else ``redis``."""
        url = self.broker_url or ""
        return "rabbitmq" if url.startswith(("amqp://", "amqps://")) else "redis"

    @property
    def broker_redis_url(self) -> str:
        """The Redis of a Redis broker: ``broker_url`` when it is a Redis URL, else ``redis_url``."""
        url = self.broker_url or ""
        return url if url.startswith(("redis://", "rediss://", "unix://")) else self.redis_url

    @property
    def exchange_url(self) -> str | None:
        """The RabbitMQ of the event exchange (``events_amqp_url``, else an AMQP ``broker_url``)."""
        return self.events_amqp_url or (self.broker_url if self.broker_kind == "rabbitmq" else None)

    @property
    def uses_redis(self) -> bool:
        """Whether anything configured needs Redis: the Redis broker or the Redis Stream."""
        return self.broker_kind == "redis" or self.event_sink == "redis"


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
