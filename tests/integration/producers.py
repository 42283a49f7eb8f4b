"""Producers, bodies and ledger queries shared by the balance-line tests on PostgreSQL."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.rejection import Rejection

CRM_SECRET = "crm-secret-0123456789abcdef"
CRM_OLD_SECRET = "crm-old-secret-0123456789"
CRM_RETIRED_SECRET = "crm-retired-secret-01234"
SUPPORT_SECRET = "support-secret-0123456789"
OPS_SECRET = "ops-secret-0123456789abc"
REFUNDS_SECRET = "refunds-secret-0123456789"

CRM_LIMITS = {"per_line": "100.00", "per_account_day": "150.00", "approval_above": "50.00", "max_percent": "20",
              "approval_above_percent": "15"}


def producers(old_key_until: str = "2026-01-31", **crm_limits: Any) -> dict[str, Any]:
    """``crm`` (rotating keys, four kinds, limits), ``support`` (credits only), ``ops`` (bill runs only),
    ``refunds`` (reverses gifts only)."""
    return {
        "crm": {
            "keys": [{"id": "crm-2", "secret": CRM_SECRET},
                     {"id": "crm-1", "secret": CRM_OLD_SECRET, "not_after": old_key_until},
                     {"id": "crm-0", "secret": CRM_RETIRED_SECRET, "not_after": "2025-12-31"}],
            "types": ["account.onboard", "balance_line.create", "balance_line.reverse"],
            "kinds": ["credit", "gift", "discount", "adjustment"],
            "limits": {**CRM_LIMITS, **crm_limits},
        },
        "support": {"keys": [{"id": "support-1", "secret": SUPPORT_SECRET}], "types": ["balance_line.create"],
                    "kinds": ["credit"]},
        "ops": {"keys": [{"id": "ops-1", "secret": OPS_SECRET}], "types": ["bill_run.trigger"]},
        "refunds": {"keys": [{"id": "refunds-1", "secret": REFUNDS_SECRET}], "types": ["balance_line.reverse"],
                    "kinds": ["gift"], "reverses_others": True},
    }


def onboarding(account: str, *, start: str = "2026-01-10", lines: list[dict[str, Any]] | None = None,
               name: str = "Acme") -> dict[str, Any]:
    """Monthly 30.00 USD from ``start``, billed on the 15th, in UTC."""
    body: dict[str, Any] = {
        "account": {"id": account, "name": name, "currency": "USD", "timezone": "UTC"},
        "start_date": start, "bill_day": 15,
        "subscriptions": [{"plan": "pro-monthly", "amount": "30.00"}],
    }
    if lines is not None:
        body["balance_lines"] = lines
    return body


def line(line_id: str, amount: str | None = "10.00", *, account: str | None = "acme", kind: str = "credit",
         **fields: Any) -> dict[str, Any]:
    """A ``balance_line.create`` body (``account=None``: the embedded shape)."""
    body: dict[str, Any] = {"line_id": line_id, "kind": kind, "currency": "USD", "label": "Goodwill credit",
                            "reason": "service outage", "author": "agent-7"}
    if amount is not None:
        body["amount"] = amount
    if account is not None:
        body["account"] = account
    body.update(fields)
    return body


def reversal(line_id: str, reversal_id: str, account: str = "acme") -> dict[str, Any]:
    return {"line_id": line_id, "reversal_id": reversal_id, "account": account, "reason": "granted by mistake",
            "author": "agent-9"}


def count(engine: Engine, table: type[Any], *where: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def ledger_counts(engine: Engine) -> tuple[int, int]:
    return count(engine, BalanceLine), count(engine, BalanceEntry)


def rejections_of(engine: Engine, message_id: str) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return [(code, reason) for code, reason in connection.execute(
            select(Rejection.code, Rejection.reason).where(Rejection.message_id == message_id))]


def audit_of(stack: Any, account: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    """``billing audit --account ACCOUNT --csv`` in this process (the stack's database)."""
    from worker.commands.audit import audit

    capsys.readouterr()
    assert audit(account, as_csv=True, ctx=stack.ctx) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
