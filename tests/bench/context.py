"""What every part of the benchmark shares: the services, the worker shape, a broker and a signer."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import redis

from tests.bench.services import KEY_ID, PRODUCER, Services


@dataclass
class Context:
    services: Services
    logs: Path
    processes: int
    threads: int
    broker: Any = field(repr=False)
    signer: Any = field(repr=False)
    settings: Any = field(repr=False)
    redis: redis.Redis = field(repr=False)
    worker_env: dict[str, str] = field(default_factory=dict)
    """The dramatiq_* variables the product worker really ran with (read from its processes)."""

    @property
    def conninfo(self) -> str:
        return self.services.conninfo

    @property
    def redis_pid(self) -> int | None:
        try:
            return int(self.redis.info("server")["process_id"])
        except (redis.RedisError, KeyError, ValueError):
            return None

    def env(self, **extra: str) -> dict[str, str]:
        """This process's environment with the run's services and ``extra`` on top."""
        return {**os.environ, **self.services.env(), **extra}

    def queue_key(self, queue: str) -> str:
        return f"{self.services.dramatiq_prefix}:{queue}"


def utc_today() -> date:
    return datetime.now(UTC).date()


def make_context(services: Services, logs: Path, processes: int, threads: int) -> Context:
    """Import the product only now: its settings and broker read the run's environment once."""
    from jobs.signer import Signer
    from worker.broker import build_broker
    from worker.settings import Settings, get_settings

    get_settings.cache_clear()
    settings = Settings()
    broker = build_broker(settings)
    signer = Signer(PRODUCER, KEY_ID, services.secret.encode("utf-8"))
    return Context(services=services, logs=logs, processes=processes, threads=threads, broker=broker,
                   signer=signer, settings=settings, redis=redis.Redis.from_url(services.redis_url))
