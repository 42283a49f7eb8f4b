"""``billing status`` and ``billing health``: what ops look at first."""

from __future__ import annotations

import json
from typing import Any

import pika.exceptions
import redis

from jobs.bill_run_status import recent_runs, rejections_by_code
from models.tables.store import transaction
from worker.commands import context, wall_clock
from worker.gauges import depth_reader
from worker.health import check_configured
from worker.outbox import measure_lag
from worker.settings import get_settings


def status_document() -> dict[str, Any]:
    settings = get_settings()
    ctx = context()
    with transaction(ctx.sessions) as session:
        runs = recent_runs(session)
        rejected = rejections_by_code(session)
    pending, lag = measure_lag(ctx.sessions, wall_clock())
    try:
        queues: Any = depth_reader(settings)()
    except (redis.RedisError, pika.exceptions.AMQPError) as exc:
        queues = {"error": f"{settings.broker_kind}: {type(exc).__name__}: {exc}"}
    return {"bill_runs": runs, "queues": queues, "outbox": {"pending": pending, "lag_seconds": round(lag, 3)},
            "rejections": rejected}


def status(*, as_json: bool) -> int:
    document = status_document()
    if as_json:
        print(json.dumps(document, indent=2))
        return 0
    print("last bill runs:")
    for run in document["bill_runs"] or [{"id": "-", "status": "none yet"}]:
        print(f"  #{run['id']} {run.get('date') or 'today'} {run['status']}: {run.get('accounts_due', 0)} due, "
              f"{run.get('invoiced', 0)} invoiced, {run.get('skipped', 0)} skipped, {run.get('failed', 0)} failed")
        for failure in run.get("failures", []):
            print(f"      {failure['account']} [{failure['code']}] {failure['reason']}")
    print("queues:", json.dumps(document["queues"]))
    print(f"outbox: {document['outbox']['pending']} pending, lag {document['outbox']['lag_seconds']} s")
    print("rejections:", json.dumps(document["rejections"]))
    return 0


def health() -> int:
    settings = get_settings()
    ctx = context()
    engine = ctx.sessions.kw["bind"]
    report = check_configured(engine, settings)
    print(json.dumps({"ok": report.ok, "checks": report.checks}))
    return 0 if report.ok else 1
