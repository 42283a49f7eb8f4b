"""What a handler needs, handed to it: settings, clock, sessions, producers and a way to send.

The worker (or ``billing simulate``, or a test) builds one ``JobContext`` and passes it down the
pipeline to every handler; nothing in ``jobs`` looks its dependencies up. Follow-up messages (a
parked line re-sent, a bill run's batches) leave through the ``Sender`` port, which the worker
implements on its broker, so ``jobs`` never sees one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from jobs.clock import Clock
from jobs.producers import ProducerRegistry
from jobs.sending import Outgoing, Sender
from jobs.settings import JobSettings

__all__ = ["BrokerDelivery", "JobContext", "Outgoing", "Sender"]


@dataclass(frozen=True)
class BrokerDelivery:
    """What the broker says about the delivery at hand, passed in by the actor that received it.

    ``enqueued_at`` is the broker's timestamp, which whoever enqueued the message set; ``replayed``
    is true for a re-send the worker itself designated (a parked line, a replayed dead letter).
    """

    message_id: str
    enqueued_at: datetime
    replayed: bool = False


@dataclass(frozen=True)
class JobContext:
    settings: JobSettings
    clock: Clock
    sessions: sessionmaker[Session]
    registry: ProducerRegistry
    sender: Sender
    trusted_clock: Clock | None = None
    """The clock signatures and key expiry are judged by, when it is not ``clock``: a rehearsal
    (``BILLING_CLOCK_START``) moves billing dates, while producers keep signing in real time."""

    def now(self) -> datetime:
        """The billing clock: whose local dates decide what is due."""
        return self.clock.now()

    def trusted_now(self) -> datetime:
        """The worker's own time for the time rules of envelopes (never a sender's timestamp)."""
        return (self.trusted_clock or self.clock).now()
