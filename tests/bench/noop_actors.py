"""A no-op actor on the product's broker: the ceiling the queue alone sets.

Loaded by the dramatiq CLI (``python -m dramatiq tests.bench.noop_actors --queues bench_noop``).
Importing ``worker.broker`` installs the same broker as ``billing worker``: same namespace,
middleware, limits and decoder, so the only difference left is the actor's body.
"""

from __future__ import annotations

from typing import Any

import dramatiq

import worker.broker  # noqa: F401 - installs the product broker before the actor below is declared

QUEUE = "bench_noop"
ACTOR = "bench.noop"


@dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, max_retries=0)
def noop(envelope: Any) -> None:
    """Receives an onboarding-sized envelope and does nothing with it."""
