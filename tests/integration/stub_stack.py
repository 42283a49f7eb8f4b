"""The real actors in this process: dramatiq's StubBroker and Worker, PostgreSQL, a manual clock.

What ``billing simulate`` does, for tests that need a database of their own and a clock they move:
a stub broker, a job context with the test's settings, producers and clock, and every actor
declared on that broker (``worker.actors.declare_actors``).
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
from typing import Any

import dramatiq
from sqlalchemy import Engine

from jobs.clock import ManualClock
from jobs.envelope import make_envelope
from jobs.producers import ProducerRegistry, registry_from_mapping
from worker.actors import declare_actors
from worker.broker import build_broker
from worker.client import build_message
from worker.context import build_context, dispose
from worker.outbox import MemoryPublisher, relay_once
from worker.settings import Settings

FAR_AGE_MS = 200 * 365 * 24 * 3600 * 1000
"""The test clock lies in the past: dramatiq's age limit (real time) must not drop its messages."""


class StubStack:
    """Send signed messages at manual-clock instants and run them to completion."""

    def __init__(self, pg_url: str, producers: dict[str, Any], start: datetime) -> None:
        self.producers = producers
        self.pg_url = pg_url
        self.registry: ProducerRegistry = registry_from_mapping({"producers": producers})
        self.settings = Settings(database_url=pg_url, max_age_ms=FAR_AGE_MS, metrics_port=0, min_backoff_ms=10,
                                 max_backoff_ms=50, max_retries=0,
                                 approvers="ops-lead,ops-lead-2,someone-else")
        self.clock = ManualClock(start)
        self.broker = build_broker(self.settings, kind="stub")
        self.ctx = build_context(self.settings, self.broker, clock=self.clock, registry=self.registry)
        declare_actors(self.broker, self.ctx, self.settings)
        self.broker.emit_after("process_boot")
        self.publisher = MemoryPublisher()
        self.worker = dramatiq.Worker(self.broker, worker_timeout=50, worker_threads=1)
        self.worker.start()

    @property
    def engine(self) -> Engine:
        bind = self.ctx.sessions.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

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
        while relay_once(self.ctx.sessions, self.publisher, source=self.settings.event_source,
                         batch_size=self.settings.relay_batch_size, now=self.clock.now(),
                         invoice_prefix=self.settings.invoice_prefix):
            pass

    def close(self) -> None:
        self.worker.stop()
        dispose(self.ctx)

    def cli(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """The real ``billing`` command on the same database (its own process, real clock)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("BILLING_")}
        env.update({"BILLING_DATABASE_URL": self.pg_url, "BILLING_METRICS_PORT": "0",
                    "BILLING_PRODUCERS_JSON": json.dumps({"producers": self.producers}),
                    "BILLING_APPROVERS": self.settings.approvers})
        return subprocess.run([sys.executable, "-m", "worker.cli", *args], env=env, cwd=cwd, capture_output=True,
                              text=True, timeout=120, check=False)

    def audit_csv(self, account: str, cwd: Path) -> list[dict[str, str]]:
        done = self.cli("audit", "--account", account, "--csv", cwd=cwd)
        assert done.returncode == 0, done.stderr
        return list(csv.DictReader(io.StringIO(done.stdout)))
