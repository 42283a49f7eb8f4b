"""The port through which jobs send follow-up messages: the worker implements it on its broker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Outgoing:
    """A message for the broker: which actor runs it, with what, under which broker message id.

    The id is chosen here, before sending, so a re-sent envelope's new carrier can be recorded
    (``jobs.deliveries.designate``) before any worker can pick it up.
    """

    queue_name: str
    actor_name: str
    args: tuple[Any, ...]
    options: dict[str, Any] = field(default_factory=dict)
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class Sender(Protocol):
    def send(self, message: Outgoing) -> None:
        """Hand ``message`` to the broker (raises on a broker fault: the caller's message is retried)."""
        ...
