"""Builders shared by the message-layer tests: a registry with rotating keys, valid bodies."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

from pydantic import SecretStr

from jobs.producers import Producer, ProducerKey, ProducerRegistry

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OLD_SECRET = "crm-old-secret-0123456789"
NEW_SECRET = "crm-new-secret-9876543210"
DELETE = object()
"""Marker for ``changed``: remove the field instead of setting it."""


def registry() -> ProducerRegistry:
    """``crm`` rotated keys on 2026-01-31 and may only send balance lines; ``ops`` sends bill runs."""
    crm = Producer(
        name="crm",
        keys=[
            ProducerKey(id="crm-2025", secret=SecretStr(OLD_SECRET), not_after=date(2026, 1, 31)),
            ProducerKey(id="crm-2026", secret=SecretStr(NEW_SECRET)),
        ],
        types=["balance_line.create", "balance_line.reverse"],
    )
    ops = Producer(
        name="ops",
        keys=[ProducerKey(id="ops-1", secret=SecretStr("ops-secret-0123456789"))],
        types=["bill_run.trigger"],
    )
    return ProducerRegistry(producers={"crm": crm, "ops": ops})


def onboard_body() -> dict[str, Any]:
    return {
        "account": {"id": "acme", "name": "Acme", "currency": "USD", "timezone": "Europe/Paris"},
        "start_date": "2018-10-05",
        "bill_day": 15,
        "subscriptions": [{"plan": "pro-monthly", "amount": "30.00"}],
    }


def line_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "line_id": "c-1",
        "account": "acme",
        "kind": "credit",
        "amount": "5.00",
        "currency": "USD",
        "label": "Welcome credit",
        "reason": "sign-up offer",
        "author": "support:ana",
    }
    body.update(fields)
    return body


def changed(document: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A deep copy of ``document`` with the dotted ``path`` set to ``value`` (or removed)."""
    result = copy.deepcopy(document)
    *parents, last = path.split(".")
    target: Any = result
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is DELETE:
        del target[last]
    else:
        target[last] = value
    return result
