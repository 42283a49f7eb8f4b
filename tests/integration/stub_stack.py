"""The real actors in this process: dramatiq's StubBroker and Worker, PostgreSQL, a manual clock.

What ``billing simulate`` does, for tests that need a database of their own and a clock they move:
``jobs.runtime.configure`` with the test's settings and producers, ``worker.broker.install(kind=
"stub")``, and every actor declared on the stub broker. Actors bind to the broker that was global
when their module was first imported (other tests may have imported them already), so ``StubStack``
re-declares them on its broker and gives them back when it closes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import dramatiq
from sqlalchemy import Engine

from jobs import runtime
from worker.client import build_message
from jobs.envelope import make_envelope
from jobs.producers import ProducerRegistry, registry_from_mapping
from worker import clock
from worker.outbox import MemoryPublisher, relay_once
from worker.settings import Settings

FAR_AGE_MS = 200 * 365 * 24 * 3600 * 1000
"""The test clock lies in the past: dramatiq's age limit (real time) must not drop its messages."""


def actor_modules() -> list[ModuleType]:
    import jobs.actors  # noqa: F401 - declares every actor
    from jobs import balance_lines, bill_runs, onboarding, quarantine

    return [balance_lines, bill_runs, onboarding, quarantine]


class StubStack:
    """Send signed messages at manual-clock instants and run them to completion."""

    def __init__(self, pg_url: str, producers: dict[str, Any], start: datetime) -> None:
        from worker import broker as broker_module

        self.producers = producers
        self.pg_url = pg_url
        self.registry: ProducerRegistry = registry_from_mapping({"producers": producers})
        self.settings = Settings(database_url=pg_url, max_age_ms=FAR_AGE_MS, metrics_port=0, min_backoff_ms=10,
                                 max_backoff_ms=50, max_retries=0)
        self.runtime = runtime.configure(self.settings, self.registry)
        self._previous_broker = dramatiq.get_broker()
        self.broker = broker_module.install(self.settings, kind="stub")
        self._rebound: list[tuple[dramatiq.Actor[Any, Any], dramatiq.Broker]] = []
        for module in actor_modules():
            for value in vars(module).values():
                if isinstance(value, dramatiq.Actor) and value.broker is not self.broker:
                    self._rebound.append((value, value.broker))
                    self.broker.declare_actor(value)
                    value.broker = self.broker
        self.broker.emit_after("process_boot")
        self.clock = clock.ManualClock(start)
        clock.use(self.clock)
        self.publisher = MemoryPublisher()
        self.worker = dramatiq.Worker(self.broker, worker_timeout=50, worker_threads=1)
        self.worker.start()

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    def envelope(self, message_type: str, body: dict[str, Any], *, producer: str = "crm",
                 key_id: str | None = None, at: datetime | None = None) -> dict[str, Any]:
        keys = self.producers[producer]["keys"]
        key = next(k for k in keys if k["id"] == key_id) if key_id else keys[0]
        return make_envelope(message_type, body, producer=producer, key_id=key["id"],
                             secret=key["secret"].encode(), now=at or self.clock.now())

    def enqueue(self, envelope: dict[str, Any], at: datetime | None = None) -> str:
        """Put one (possibly tampered) envelope on its queue as a new broker message; run it."""
        message = build_message(envelope)
        self.broker.declare_queue(message.queue_name)
        stamp = int((at or self.clock.now()).timestamp() * 1000)
        self.broker.enqueue(message.copy(message_timestamp=stamp))
        self.drain()
        return str(envelope.get("id"))

    def send(self, message_type: str, body: dict[str, Any], **signing: Any) -> str:
        return self.enqueue(self.envelope(message_type, body, **signing))

    def bill_run(self) -> None:
        self.send("bill_run.trigger", {}, producer="ops")

    def drain(self) -> None:
        """Run every queued message, then number and publish their events as the relay does."""
        for _ in range(100):
            busy = False
            for queue in sorted(self.broker.get_declared_queues()):
                if self.broker.queues[queue].unfinished_tasks:
                    busy = True
                    self.broker.join(queue, fail_fast=True)
            self.worker.join()
            if not busy:
                break
        while relay_once(self.runtime.sessions, self.publisher, source=self.settings.event_source,
                         batch_size=self.settings.relay_batch_size, now=self.clock.now(),
                         invoice_prefix=self.settings.invoice_prefix):
            pass

    def close(self) -> None:
        self.worker.stop()
        for actor, broker in self._rebound:
            actor.broker = broker
        dramatiq.set_broker(self._previous_broker)
        clock.use(clock.SystemClock())
        runtime.reset()

    def cli(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """The real ``billing`` command on the same database (its own process, real clock)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("BILLING_")}
        env.update({"BILLING_DATABASE_URL": self.pg_url, "BILLING_METRICS_PORT": "0",
                    "BILLING_PRODUCERS_JSON": json.dumps({"producers": self.producers})})
        return subprocess.run([sys.executable, "-m", "worker.cli", *args], env=env, cwd=cwd, capture_output=True,
                              text=True, timeout=120, check=False)

    def audit_csv(self, account: str, cwd: Path) -> list[dict[str, str]]:
        done = self.cli("audit", "--account", account, "--csv", cwd=cwd)
        assert done.returncode == 0, done.stderr
        return list(csv.DictReader(io.StringIO(done.stdout)))
