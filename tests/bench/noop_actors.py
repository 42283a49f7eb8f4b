"""A no-op actor on the product's broker: the ceiling the queue alone sets.

Loaded by the dramatiq CLI (``python -m dramatiq tests.bench.noop_actors:setup --queues bench_noop``).
``setup`` builds the same broker as ``billing worker`` (same namespace, middleware, limits and
decoder), so the only difference left is the actor's body.
"""

from __future__ import annotations

from typing import Any

import dramatiq

from worker.broker import build_broker
from worker.settings import get_settings

QUEUE = "bench_noop"
ACTOR = "bench.noop"


def noop(envelope: Any) -> None:
    """Receives an onboarding-sized envelope and does nothing with it."""


def setup() -> None:
    broker = build_broker(get_settings())
    dramatiq.set_broker(broker)
    dramatiq.actor(broker=broker, actor_name=ACTOR, queue_name=QUEUE, max_retries=0)(noop)
