"""Counting deliveries in the database, where a SIGKILLed worker cannot lose the count.

dramatiq does not count a delivery that was cut short by SIGKILL or the OOM killer, so a message
that kills its worker would come back forever. Each delivery bumps a row keyed by the envelope id
in its own tiny transaction before the work starts; past ``max_deliveries`` the message is
quarantined. The same row spots replays: an envelope id that arrives in a second broker message
is a copy, not a redelivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from models.tables.message_delivery import MessageDelivery
from worker.db import transaction


@dataclass(frozen=True)
class Delivery:
    deliveries: int
    first_broker_message_id: str

    def is_copy_of_another(self, broker_message_id: str) -> bool:
        return self.first_broker_message_id != broker_message_id


def count(
    sessions: sessionmaker[Session], envelope_id: str, message_type: str, broker_message_id: str, now: datetime
) -> Delivery:
    """Record one more delivery of ``envelope_id`` and return the running count."""
    table = MessageDelivery.__table__
    assert isinstance(table, Table)
    with transaction(sessions) as session:
        dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        statement = (
            dialect_insert(table)
            .values(message_id=envelope_id, message_type=message_type, broker_message_id=broker_message_id,
                    deliveries=1, first_seen_at=now, last_seen_at=now)
            .on_conflict_do_update(
                index_elements=[table.c.message_id],
                set_={"deliveries": table.c.deliveries + 1, "last_seen_at": now},
            )
            .returning(table.c.deliveries, table.c.broker_message_id)
        )
        deliveries, first = session.execute(statement).one()
    return Delivery(int(deliveries), str(first))
