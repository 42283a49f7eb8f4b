"""Counting deliveries in the database, where a SIGKILLed worker cannot lose the count.

dramatiq does not count a delivery that was cut short by SIGKILL or the OOM killer, so a message
that kills its worker would come back forever. Each delivery bumps a row keyed by the envelope id
in its own tiny transaction before the work starts; past ``max_deliveries`` the message is
quarantined. The same row spots replays: an envelope id that arrives in a second broker message
is a copy, not a redelivery, unless the worker itself designated that broker message as the
envelope's new carrier (a parked line resumed, a dead letter replayed by ops).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.tables.message_delivery import MessageDelivery
from models.tables.prepared import Prepared
from models.tables.store import autocommit, table_of, upsert_for


@dataclass(frozen=True)
class Delivery:
    deliveries: int
    first_broker_message_id: str
    resent_broker_message_id: str | None = None
    first_seen_at: datetime | None = None
    """When the worker first received the envelope (the instant its time rules are judged at)."""

    def is_copy_of_another(self, broker_message_id: str) -> bool:
        """True unless this broker message is the envelope's first carrier or the one the worker re-sent."""
        return broker_message_id not in (self.first_broker_message_id, self.resent_broker_message_id)


_DELIVERIES = table_of(MessageDelivery)
_COUNT = Prepared(lambda dialect: (
    upsert_for(dialect, _DELIVERIES)
    .values(message_id=bindparam("envelope_id"), message_type=bindparam("message_type"),
            broker_message_id=bindparam("broker_message_id"), deliveries=1,
            first_seen_at=bindparam("seen_at"), last_seen_at=bindparam("seen_at"))
    .on_conflict_do_update(index_elements=[_DELIVERIES.c.message_id],
                           set_={"deliveries": _DELIVERIES.c.deliveries + 1, "last_seen_at": bindparam("seen_at")})
    .returning(_DELIVERIES.c.deliveries, _DELIVERIES.c.broker_message_id, _DELIVERIES.c.resent_broker_message_id,
               _DELIVERIES.c.first_seen_at)
))
_FIRST_SEEN = Prepared(
    select(_DELIVERIES.c.first_seen_at, _DELIVERIES.c.broker_message_id, _DELIVERIES.c.resent_broker_message_id)
    .where(_DELIVERIES.c.message_id == bindparam("envelope_id"))
)


def count(
    sessions: sessionmaker[Session], envelope_id: str, message_type: str, broker_message_id: str, seen_at: datetime
) -> Delivery:
    """Record one more delivery of ``envelope_id`` and return the running count.

    ``seen_at`` is the worker's own clock at this delivery (never the broker's timestamp, which
    whoever enqueues sets); the first one is kept, and every later delivery of the same carrier
    judges key expiry and signature freshness against it (``first_seen_at``).
    """
    with autocommit(sessions) as connection:
        [(deliveries, first, resent, first_seen_at)] = _COUNT.rows(connection, {
            "envelope_id": envelope_id, "message_type": message_type, "broker_message_id": broker_message_id,
            "seen_at": seen_at,
        })
    return Delivery(int(deliveries), str(first), resent, first_seen_at)


def designate(session: Session, envelope_id: str, broker_message_id: str) -> None:
    """Make ``broker_message_id`` the envelope's legitimate carrier, with a fresh delivery count.

    Called in the transaction that decides to re-send a kept envelope, before it is enqueued.
    """
    session.execute(
        update(MessageDelivery)
        .where(MessageDelivery.message_id == envelope_id)
        .values(resent_broker_message_id=broker_message_id, deliveries=0)
    )


def first_seen(sessions: sessionmaker[Session], envelope_id: str, broker_message_id: str) -> datetime | None:
    """When the worker first received this envelope, if ``broker_message_id`` is its first carrier or
    the re-send the worker designated; None for an envelope never seen, or seen in another message."""
    with autocommit(sessions) as connection:
        rows = _FIRST_SEEN.rows(connection, {"envelope_id": envelope_id})
    if not rows or broker_message_id not in (rows[0][1], rows[0][2]):
        return None
    seen: datetime = rows[0][0]
    return seen
