"""Bill runs in one process: the real handlers and database code, a manual clock, a collecting broker.

Triggers and onboarding messages are signed envelopes handed to ``receive`` exactly as the actors
do; the fan-out's ``bill_accounts`` messages are collected instead of sent to Redis, then run one
after the other through the actor's own function. Only the broker is replaced.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from jobs.clock import ManualClock
from jobs.context import BrokerDelivery, JobContext
from jobs.envelope import make_envelope
from jobs.producers import SIMULATION_PRODUCER, SIMULATION_SECRET, ProducerRegistry
from jobs.sending import Outgoing
from models.tables.account import Account
from models.tables.bill_run import BillRun
from models.tables.store import make_engine, make_session_factory
from models.tables.subscription import Subscription
from worker.outbox import MemoryPublisher, relay_once
from worker.settings import Settings


@dataclass
class CollectingSender:
    """Stands in for the worker's broker in ``fan_out``: keeps what would have been sent."""

    messages: list[Outgoing] = field(default_factory=list)
    fail_after: int | None = None
    """Raise ConnectionError once this many messages were accepted (a broker that goes away)."""

    def send(self, message: Outgoing) -> None:
        if self.fail_after is not None and len(self.messages) >= self.fail_after:
            raise ConnectionError("broker unreachable")
        self.messages.append(message)


@dataclass(frozen=True)
class RunRow:
    id: int
    status: str
    accounts_due: int
    invoiced: int
    skipped: int
    failed: int


class Harness:
    """Drives onboarding and bill runs against one database at the manual clock's instants."""

    def __init__(self, database_url: str, start: datetime, **settings: Any) -> None:
        self.settings = Settings(database_url=database_url, metrics_port=0, **settings)
        registry = ProducerRegistry(producers={SIMULATION_PRODUCER.name: SIMULATION_PRODUCER})
        self.clock = ManualClock(start)
        self.broker = CollectingSender()
        self.engine = make_engine(database_url)
        self.ctx = JobContext(settings=self.settings, clock=self.clock, sessions=make_session_factory(self.engine),
                              registry=registry, sender=self.broker)
        self.publisher = MemoryPublisher()

    def close(self) -> None:
        self.engine.dispose()

    def delivery(self, envelope: dict[str, Any]) -> BrokerDelivery:
        """One broker message per envelope: a second delivery of the same envelope is a redelivery."""
        return BrokerDelivery(message_id=f"broker-{envelope['id']}", enqueued_at=self.clock.now())

    def envelope(self, message_type: str, body: dict[str, Any]) -> dict[str, Any]:
        return make_envelope(message_type, body, producer=SIMULATION_PRODUCER.name, key_id="sim-1",
                             secret=SIMULATION_SECRET.encode(), now=self.clock.now())

    def onboard(self, body: dict[str, Any]) -> str:
        from jobs.onboarding import MESSAGE_TYPE, handle_onboard_account
        from jobs.pipeline import receive

        envelope = self.envelope(MESSAGE_TYPE, body)
        outcome = receive(self.ctx, MESSAGE_TYPE, envelope, handle_onboard_account, self.delivery(envelope))
        self.relay()
        return outcome

    def relay(self) -> int:
        """Number and publish every pending event, as the relay does after each commit; return how many."""
        sent = 0
        while batch := relay_once(self.ctx.sessions, self.publisher, source=self.settings.event_source,
                                  batch_size=self.settings.relay_batch_size, now=self.clock.now(),
                                  invoice_prefix=self.settings.invoice_prefix):
            sent += batch
        return sent

    def trigger(self, run_date: date | None = None, envelope: dict[str, Any] | None = None) -> int | None:
        """Deliver a trigger (a new one unless ``envelope`` is given) and run its fan-out; the batches
        wait in ``broker``."""
        from jobs.bill_runs import TRIGGER, start_run

        body = {"date": run_date.isoformat()} if run_date else {}
        envelope = envelope or self.envelope(TRIGGER, body)
        return start_run(self.ctx, envelope, self.delivery(envelope))

    def drain(self) -> int:
        """Run every collected batch through the ``bill_accounts`` actor's function; return how many."""
        from jobs.bill_batches import BATCH, run_batch

        done = 0
        while self.broker.messages:
            message = self.broker.messages.pop(0)
            run_id, account_ids, run_date = message.args
            run_batch(self.ctx, run_id, account_ids, date.fromisoformat(run_date) if run_date else None,
                      batch_key=f"{BATCH}:{message.message_id}")
            done += 1
        return done

    def run(self, run_date: date | None = None) -> RunRow | None:
        """A whole run at the clock's instant: trigger, fan-out, every batch; its final row."""
        run_id = self.trigger(run_date)
        self.drain()
        self.relay()
        return None if run_id is None else self.run_row(run_id)

    def run_row(self, run_id: int) -> RunRow:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(BillRun.id, BillRun.status, BillRun.accounts_due, BillRun.invoiced, BillRun.skipped,
                       BillRun.failed).where(BillRun.id == run_id)
            ).one()
        return RunRow(*row)


def ticks(start: datetime, end: datetime, step_hours: int = 1) -> Iterator[datetime]:
    """Whole hours from ``start`` up to, not including, ``end``."""
    from datetime import timedelta

    tick = start
    while tick < end:
        yield tick
        tick += timedelta(hours=step_hours)


def seed_due_accounts(
    engine: Engine, ids: Sequence[str], *, due: date, timezone: str = "UTC", plans: int = 1,
    currency: str = "USD", amount_minor: int = 3000,
) -> None:
    """Accounts as onboarding leaves them when their first monthly period starts on ``due``.

    ``due`` is each subscription's start and its bill day, so the first period is a full one.
    """
    accounts = [
        {"id": account_id, "name": f"Account {account_id}", "currency": currency, "timezone": timezone,
         "bill_day": due.day, "combine_invoices": None, "start_date": due, "onboarded_on": due,
         "hold_until": None, "body_hash": "0" * 64}
        for account_id in ids
    ]
    subscriptions = [
        {"account_id": account_id, "position": position, "key": f"plan-{position}", "plan": f"plan-{position}",
         "amount_minor": amount_minor, "currency": currency, "interval": "month", "interval_count": 1,
         "timing": "advance", "proration": "daily", "bill_day": due.day, "bill_month": None, "bill_weekday": None,
         "start_date": due, "billed_until": None, "next_bill_date": due}
        for account_id in ids
        for position in range(plans)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Account), accounts)
        connection.execute(insert(Subscription), subscriptions)
