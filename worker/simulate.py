"""`billing simulate`: a scenario replayed through the real actors on a test clock.

Same actors, same database code, same relay as production; only the broker (dramatiq's
in-memory StubBroker), the database (a throwaway SQLite file) and the clock (a test clock)
differ. The result is that of a bill run on every whole hour, as the built-in scheduler does, so
each account is billed on its own local date; but the clock skips the hours at which nothing can
happen (``jobs.wakeups``), so a run costs what its scenario holds, not how long it lasts.
``hourly`` (``billing simulate --hourly``) ticks every hour instead: the reference the jumps are
tested against. Output format: the acceptance README.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import dramatiq
from sqlalchemy import select

from jobs import parking, rejections, wakeups
from jobs.canonical import FloatInJsonError
from jobs.clock import ManualClock, local_date
from jobs.envelope import make_envelope
from jobs.outcomes import RejectionCode
from jobs.producers import SIMULATION_PRODUCER, ProducerRegistry, registry_from_mapping
from jobs.routes import ROUTES
from models.billing.balance import remaining_credit
from models.billing.money import format_amount
from models.migrations.runner import create_sqlite
from models.tables.account import Account
from models.tables.mapping import open_balance_lines
from models.tables.rejection import Rejection
from models.tables.store import transaction
from worker.actors import declare_actors
from worker.broker import billing_middleware
from worker.client import build_message
from worker.clocked_broker import ClockedStubBroker
from worker.context import build_context, dispose
from worker.outbox import MemoryPublisher, relay_once
from worker.settings import Settings

HOUR = timedelta(hours=1)
SIMULATION_MAX_AGE_MS = 200 * 365 * 24 * 3600 * 1000
"""Scenario instants lie years in the past: dramatiq's age limit must not drop them."""


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    tick = start.replace(minute=0, second=0, microsecond=0)
    while tick < end:
        yield tick
        tick += HOUR


def _hour(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


class Simulation:
    """One scenario run; ``run()`` returns the printed document."""

    hourly = False
    """Tick every hour rather than jump to the next one at which something can happen."""

    def __init__(self, scenario: dict[str, Any], workdir: Path) -> None:
        self.scenario = scenario
        options = dict(scenario.get("settings") or {})
        producers = options.pop("producers", None)
        known = set(Settings.model_fields)
        database = workdir / "simulation.sqlite3"
        self.settings = Settings(
            database_url=f"sqlite:///{database}",
            max_age_ms=SIMULATION_MAX_AGE_MS,
            metrics_port=0,
            **{key: value for key, value in options.items() if key in known},
        )
        create_sqlite(database)  # the schema the migrations build, without running them each time
        registry = registry_from_mapping(producers) if producers else ProducerRegistry(producers={})
        registry.producers.setdefault(SIMULATION_PRODUCER.name, SIMULATION_PRODUCER)
        self.registry = registry
        messages = scenario.get("messages") or []
        first = _instant(messages[0]["at"]) if messages else _instant(f"{scenario['until']}T00:00:00Z")
        self.clock = ManualClock(first)
        self.broker = ClockedStubBroker(self.clock, middleware=billing_middleware(self.settings))
        self.ctx = build_context(self.settings, self.broker, clock=self.clock, registry=registry)
        declare_actors(self.broker, self.ctx, self.settings)
        self.broker.emit_after("process_boot")
        self.publisher = MemoryPublisher()
        self.may_have_parked = True
        """False only when no message was parked after the last hour ran and none has run since
        that could park one (a retry released by the clock): the sweep would then find nothing."""

    def run(self) -> dict[str, Any]:
        messages = sorted(
            ((_instant(m["at"]), index, m) for index, m in enumerate(self.scenario.get("messages") or [])),
            key=lambda item: (item[0], item[1]),
        )
        end = datetime.combine(date.fromisoformat(self.scenario["until"]) + timedelta(days=1), time(), UTC)
        worker = dramatiq.Worker(self.broker, worker_timeout=50, worker_threads=1)
        worker.start()
        try:
            pending = list(messages)
            for tick in self._ticks(self.clock.now(), end, pending):
                self.clock.set(tick)
                self._send("bill_run.trigger", {}, tick)
                self._drain(worker)
                if self.may_have_parked:
                    parking.sweep(self.ctx, tick)
                    self._drain(worker)
                while pending and pending[0][0] < tick + HOUR:
                    at, _, message = pending.pop(0)
                    self.clock.set(max(at, tick))
                    self._send(message["type"], message.get("body"), at, message)
                    self._drain(worker)
                if self.hourly:
                    self._relay()
            self._relay()
        finally:
            worker.stop()
        return self._report(end - timedelta(seconds=1))

    def _ticks(self, start: datetime, end: datetime, pending: list[Any]) -> Iterator[datetime]:
        """The hours ``run`` works through: each next one is found after the loop ran the last."""
        if self.hourly:
            yield from _hours(start, end)
            return
        tick: datetime | None = _hour(start)
        while tick is not None and tick < end:
            yield tick
            known = [_hour(pending[0][0])] if pending else []  # the hour whose tick delivers the next message
            if (retry := self.broker.next_due()) is not None:
                known.append(retry)
            with transaction(self.ctx.sessions) as session:
                tick = wakeups.next_tick(session, tick, known)
                self.may_have_parked = parking.any_parked(session)

    def _send(self, message_type: str, body: Any, at: datetime, spec: dict[str, Any] | None = None) -> None:
        spec = spec or {}
        try:
            envelope = self._envelope(message_type, body, at, spec)
        except FloatInJsonError as error:  # what the worker's signature check says of such a body
            self._refuse(message_type, body, f"{error.path}: {error.value!r} is a JSON number with a fraction; "
                                             "send it as a decimal string")
            return
        except (ValueError, TypeError) as error:
            self._refuse(message_type, body, f"body: cannot be signed ({type(error).__name__})")
            return
        if message_type not in ROUTES:  # no actor would ever receive it: refused as the worker would
            self._refuse(message_type, envelope, f"type: unknown message type {message_type!r}", raw=envelope)
            return
        self._enqueue(envelope, at, spec)

    def _refuse(self, message_type: object, body: Any, reason: str, raw: Any = None) -> None:
        rejections.record(self.ctx, raw if raw is not None else {"type": message_type, "body": body},
                          code=RejectionCode.INVALID, reason=reason, now=self.clock.now(),
                          message_type=str(message_type)[:40])

    def _envelope(self, message_type: str, body: Any, at: datetime, spec: dict[str, Any]) -> dict[str, Any]:
        producer = self.registry.get(spec.get("producer", SIMULATION_PRODUCER.name))
        if producer is not None:
            key = producer.keys[0]
            return make_envelope(message_type, body, producer=producer.name, key_id=key.id,
                                 secret=key.secret.get_secret_value().encode(), now=at)
        return make_envelope(message_type, body, producer=spec["producer"], key_id="unknown", secret=b"unknown",
                             now=at)

    def _enqueue(self, envelope: dict[str, Any], at: datetime, spec: dict[str, Any]) -> None:
        if "signature" in spec:
            envelope["signature"] = spec["signature"]
        message = build_message(envelope)
        self.broker.enqueue(message.copy(message_timestamp=int(at.timestamp() * 1000)))

    def _drain(self, worker: Any) -> None:
        if self.broker.release_due(self.clock.now()):  # retries due on the test clock
            self.may_have_parked = True
        for _ in range(100):
            busy = False
            for queue in sorted(self.broker.get_declared_queues()):
                if self.broker.queues[queue].unfinished_tasks:
                    busy = True
                    self.broker.join(queue, fail_fast=True)
            worker.join()
            if not busy:
                return

    def _relay(self) -> None:
        """Number and publish what the outbox holds, as the relay does, batch after batch.

        The jumps run it once, after the last hour: nothing a simulation runs reads an invoice's
        number or whether its event was sent (only ``sent_at`` of the discarded database differs),
        numbers follow the outbox order whenever they are given, and one pass over the whole
        backlog costs a fraction of one pass an hour. ``hourly`` keeps the relay in every hour, as
        the reference the jumps are compared with.
        """
        while relay_once(self.ctx.sessions, self.publisher, source=self.settings.event_source,
                         batch_size=self.settings.relay_batch_size, now=self.clock.now(),
                         invoice_prefix=self.settings.invoice_prefix):
            pass

    def _report(self, last_instant: datetime) -> dict[str, Any]:
        with transaction(self.ctx.sessions) as session:
            balances = {
                account.id: {"credit": format_amount(
                    remaining_credit(open_balance_lines(session, account.id),
                                     local_date(last_instant, account.timezone)), account.currency)}
                for account in session.scalars(select(Account).order_by(Account.id))
            }
            rejected = [
                {"type": row.message_type, "code": row.code, "reason": row.reason, "message_id": row.message_id}
                for row in session.scalars(select(Rejection).order_by(Rejection.id))
            ]
        invoices = [event["data"] for event in self.publisher.events]  # as announced, numbers included
        events = [{"id": event["id"], "type": event["type"], "invoice": event["data"]["number"]}
                  for event in self.publisher.events]
        return {"invoices": invoices, "balances": balances, "events": events, "rejected": rejected}


def simulate_file(path: Path, *, hourly: bool = False) -> dict[str, Any]:
    scenario = json.loads(path.read_text())
    with tempfile.TemporaryDirectory(prefix="billing-simulate-") as workdir:
        simulation = Simulation(scenario, Path(workdir))
        simulation.hourly = hourly
        try:
            return simulation.run()
        finally:
            dispose(simulation.ctx)
