"""``billing dlq``: rejected and quarantined messages, listed, shown and replayed."""

from __future__ import annotations

import json
import sys

from jobs import dlq
from worker.commands import context


def dlq_list(*, code: str | None, limit: int) -> int:
    for row in dlq.latest(context(), code=code, limit=limit):
        replayed = f" (replayed {row.replayed_at:%Y-%m-%d %H:%M})" if row.replayed_at else ""
        print(f"{row.id:>6} {row.created_at:%Y-%m-%d %H:%M:%S} {row.code:<16} {row.message_type or '-':<22} "
              f"{row.reason}{replayed}")
    return 0


def dlq_show(rejection_id: int | None) -> int:
    row = dlq.find(context(), rejection_id) if rejection_id else None
    if row is None:
        print(f"billing dlq: no rejection {rejection_id}", file=sys.stderr)
        return 2
    print(json.dumps({"id": row.id, "code": row.code, "reason": row.reason, "message_id": row.message_id,
                      "message_type": row.message_type, "producer": row.producer,
                      "created_at": row.created_at.isoformat(), "payload": json.loads(row.payload)}, indent=2))
    return 0


def dlq_replay(rejection_id: int | None) -> int:
    """Re-send a rejected message whose original was kept (see ``jobs.outcomes.REPLAYABLE``)."""
    if rejection_id is None:
        print("billing dlq: replay needs a rejection id", file=sys.stderr)
        return 2
    try:
        message_id = dlq.replay(context(), rejection_id)
    except dlq.NotReplayable as exc:
        print(f"billing dlq: {exc}", file=sys.stderr)
        return 2
    print(f"rejection {rejection_id} re-sent as broker message {message_id}")
    return 0
