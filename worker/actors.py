"""The actors: each binds a queue to a job handler, with the delivery facts only dramatiq knows.

Nothing is declared at import. ``declare_actors`` puts them on a given broker (``billing
simulate`` and tests use a StubBroker); ``setup`` is what dramatiq's CLI calls in every worker
process (``dramatiq worker.actors:setup``): it builds the broker and the job context from the
settings, installs the broker as dramatiq's global one, and declares the actors on it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from jobs import bill_batches, bill_runs, quarantine
from jobs.context import BrokerDelivery, JobContext
from jobs.handlers import HANDLERS
from jobs.parking import REPLAY_OPTION
from jobs.pipeline import Handler, receive
from jobs.producers import NO_PRODUCERS
from jobs.routes import BILL_RUN_BATCH, QUARANTINE, ROUTES
from worker.broker import build_broker
from worker.context import build_context
from worker.dead_letters import DeadLetterRecorder
from worker.settings import Settings, get_settings

QUARANTINE_RETRIES = 3


def current_delivery(ctx: JobContext) -> BrokerDelivery:
    """The broker's facts about the message being handled (a direct call has none: "now")."""
    message = CurrentMessage.get_current_message()
    if message is None:
        return BrokerDelivery("direct", ctx.now())
    return BrokerDelivery(message_id=message.message_id,
                          enqueued_at=datetime.fromtimestamp(message.message_timestamp / 1000, UTC),
                          replayed=bool(message.options.get(REPLAY_OPTION)))


def declare_actors(broker: dramatiq.Broker, ctx: JobContext, settings: Settings) -> list[dramatiq.Actor[Any, Any]]:
    """Every actor of the worker, on ``broker``; dead letters recorded through ``ctx``."""
    broker.add_middleware(DeadLetterRecorder(ctx, settings.max_age_ms))

    def bind(fn: Callable[..., None], actor_name: str, queue_name: str, retries: int) -> dramatiq.Actor[Any, Any]:
        decorate = dramatiq.actor(broker=broker, actor_name=actor_name, queue_name=queue_name, max_retries=retries)
        return decorate(fn)

    def envelope_actor(message_type: str, handler: Handler) -> dramatiq.Actor[Any, Any]:
        route = ROUTES[message_type]

        def handle(envelope: Any) -> None:
            receive(ctx, message_type, envelope, handler, current_delivery(ctx))

        handle.__name__ = route.actor_name.replace(".", "_")
        return bind(handle, route.actor_name, route.queue_name, settings.max_retries)

    def trigger_bill_run(envelope: Any) -> None:
        bill_runs.start_run(ctx, envelope, current_delivery(ctx))

    def bill_accounts(run_id: int, account_ids: list[str], run_date: str | None) -> None:
        delivery = current_delivery(ctx)
        bill_batches.run_batch(ctx, run_id, account_ids, datetime.fromisoformat(run_date).date() if run_date else None,
                            batch_key=f"{bill_batches.BATCH}:{delivery.message_id}")

    def undecodable(raw_base64: str, error: str) -> None:
        quarantine.record_undecodable(ctx, raw_base64, error)

    actors = [envelope_actor(message_type, handler) for message_type, handler in HANDLERS.items()
              if message_type != bill_runs.TRIGGER]
    trigger = ROUTES[bill_runs.TRIGGER]
    actors += [
        bind(trigger_bill_run, trigger.actor_name, trigger.queue_name, settings.max_retries),
        bind(bill_accounts, BILL_RUN_BATCH.actor_name, BILL_RUN_BATCH.queue_name, settings.max_retries),
        bind(undecodable, QUARANTINE.actor_name, QUARANTINE.queue_name, QUARANTINE_RETRIES),
    ]
    return actors


def setup() -> None:
    """For dramatiq's CLI, in each worker process: broker, context and actors from the settings."""
    settings = get_settings()
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    ctx = build_context(settings, broker)
    if not ctx.registry.producers:
        raise SystemExit(f"billing worker: {NO_PRODUCERS}")
    declare_actors(broker, ctx, settings)
