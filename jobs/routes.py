"""Where each message type goes: the one table producers and actors agree on.

The client builds dramatiq messages from this table without importing any actor, and each actor
declares the same queue and name, so a rename happens here or nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from jobs.sending import Outgoing


class Route(NamedTuple):
    """A dramatiq queue and the actor that consumes a message type."""

    queue_name: str
    actor_name: str


ROUTES: Mapping[str, Route] = MappingProxyType(
    {
        "account.onboard": Route("onboarding", "onboarding.onboard_account"),
        "balance_line.create": Route("balances", "balances.create_balance_line"),
        "balance_line.reverse": Route("balances", "balances.reverse_balance_line"),
        "bill_run.trigger": Route("invoicing", "invoicing.trigger_bill_run"),
        "subscription.add": Route("lifecycle", "lifecycle.add_subscription"),
        "subscription.change": Route("lifecycle", "lifecycle.change_subscription"),
        "subscription.pause": Route("lifecycle", "lifecycle.pause_subscription"),
        "subscription.resume": Route("lifecycle", "lifecycle.resume_subscription"),
        "subscription.cancel": Route("lifecycle", "lifecycle.cancel_subscription"),
        "account.update": Route("lifecycle", "lifecycle.update_account"),
    }
)

MESSAGE_TYPES: tuple[str, ...] = tuple(ROUTES)
"""Every message type the worker understands, in a stable order."""

QUARANTINE = Route("quarantine", "quarantine.undecodable")
"""Where the decoder sends payloads that are not dramatiq messages at all."""

BILL_RUN_BATCH = Route("invoicing", "invoicing.bill_accounts")
"""A bill run's batches of due accounts, produced only by the run's fan-out."""

QUEUES: tuple[str, ...] = tuple(dict.fromkeys([*(r.queue_name for r in ROUTES.values()), QUARANTINE.queue_name]))
"""Every queue a worker consumes (bill-run batches share ``invoicing`` with their triggers)."""


def route_for(message_type: str) -> Route:
    """The route of a message type; ``ValueError`` naming the known types otherwise."""
    try:
        return ROUTES[message_type]
    except KeyError:
        known = ", ".join(MESSAGE_TYPES)
        raise ValueError(f"unknown message type {message_type!r}; expected one of {known}") from None


def envelope_message(envelope: dict[str, Any], options: dict[str, Any] | None = None) -> Outgoing:
    """The broker message that carries ``envelope`` to the actor its type routes to."""
    route = route_for(envelope["type"])
    return Outgoing(queue_name=route.queue_name, actor_name=route.actor_name, args=(envelope,),
                    options=dict(options or {}))
