"""``billing webhooks``: deliveries per endpoint, the dead-letter list, one delivery shown or replayed."""

from __future__ import annotations

import json
import sys

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.tables.store import make_engine, make_session_factory, transaction
from models.tables.webhook_delivery import WebhookDelivery
from worker import webhooks
from worker.settings import get_settings


def _sessions() -> sessionmaker[Session]:
    return make_session_factory(make_engine(get_settings().database_url))


def webhooks_list(*, endpoint: str | None, status: str, limit: int) -> int:
    """The dead letters (by default) or the deliveries of another status, newest first, and counts per endpoint."""
    sessions = _sessions()
    with transaction(sessions) as session:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
        if status != "all":
            query = query.where(WebhookDelivery.status == status)
        if endpoint:
            query = query.where(WebhookDelivery.endpoint == endpoint)
        rows = list(session.scalars(query))
        counts = session.execute(select(WebhookDelivery.endpoint, WebhookDelivery.status, func.count())
                                 .group_by(WebhookDelivery.endpoint, WebhookDelivery.status)
                                 .order_by(WebhookDelivery.endpoint, WebhookDelivery.status)).all()
    for name, state, count in counts:
        if not endpoint or name == endpoint:
            print(f"# {name}: {count} {state}")
    for row in rows:
        error = f" last error: {row.last_error}" if row.last_error else ""
        print(f"{row.id:>6} {row.created_at:%Y-%m-%d %H:%M:%S} {row.endpoint:<16} {row.status:<9} {row.event_type:<18} "
              f"{row.account_id:<16} {row.attempts} attempt(s){error}")
    return 0


def webhooks_show(delivery_id: int | None) -> int:
    with transaction(_sessions()) as session:
        row = session.get(WebhookDelivery, delivery_id) if delivery_id else None
    if row is None:
        print(f"billing webhooks: no delivery {delivery_id}", file=sys.stderr)
        return 2
    print(json.dumps({
        "id": row.id, "endpoint": row.endpoint, "status": row.status, "event_id": row.event_id,
        "event_type": row.event_type, "account": row.account_id, "attempts": row.attempts,
        "last_error": row.last_error, "created_at": row.created_at.isoformat(),
        "next_attempt_at": row.next_attempt_at.isoformat(), "retry_until": row.retry_until.isoformat(),
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
        "replayed_at": row.replayed_at.isoformat() if row.replayed_at else None,
        "event": json.loads(row.body),
    }, indent=2))
    return 0


def webhooks_replay(delivery_id: int | None) -> int:
    """Send a dead delivery again (the relay's loop picks it up within a second); its account's
    later events on that endpoint follow it."""
    if delivery_id is None:
        print("billing webhooks: replay needs a delivery id", file=sys.stderr)
        return 2
    try:
        row = webhooks.replay(_sessions(), delivery_id, get_settings())
    except webhooks.NotReplayable as exc:
        print(f"billing webhooks: {exc}", file=sys.stderr)
        return 2
    print(f"webhook delivery {row.id} ({row.endpoint}, event {row.event_id}) will be sent again")
    return 0
