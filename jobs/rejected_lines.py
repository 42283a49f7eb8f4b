"""What a refused message tried to do to an account's balance: the audit's rows for it.

A refusal is stored once for operators (``rejections``: redacted payload) and, when the message
names an account, once per balance line for the audit (``balance_rejections``), so ``billing audit
--account X`` finds it by an indexed id. The envelope is untrusted: ids, kinds and amounts are kept
only when they are well formed, and the author only when a configured key signed the message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from jobs.envelope import authentic
from jobs.producers import ProducerRegistry
from models.billing.balance import BALANCE_KINDS
from models.billing.errors import BillingError
from models.billing.money import check_currency, parse_amount
from models.tables.balance_rejection import BalanceRejection

_BALANCE_TYPES = frozenset({"balance_line.create", "balance_line.reverse"})
ONBOARD = "account.onboard"


def _text(value: object, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def account_of(message_type: str | None, body: object) -> str | None:
    """The account a body names (``account`` or, for an onboarding, ``account.id``), if well formed."""
    if not isinstance(body, Mapping):
        return None
    account = body.get("account")
    if message_type == ONBOARD and isinstance(account, Mapping):
        account = account.get("id")
    return _text(account, 64)


def _amount(line: Mapping[str, Any], currency: str | None) -> int | None:
    if currency is None:
        return None
    try:
        return parse_amount(line.get("amount"), currency)
    except BillingError:
        return None


def line_facts(line: Mapping[str, Any], *, trusted: bool) -> dict[str, Any]:
    """The audit columns one (create, reverse or embedded) line body can fill."""
    try:
        currency: str | None = check_currency(line.get("currency"))
    except BillingError:
        currency = None
    kind = line.get("kind")
    return {
        "line_id": _text(line.get("line_id"), 100),
        "kind": kind if isinstance(kind, str) and kind in BALANCE_KINDS else None,
        "amount_minor": _amount(line, currency),
        "currency": currency,
        "author": _text(line.get("author"), 200) if trusted else None,
    }


def _lines(message_type: str | None, body: Mapping[str, Any], trusted: bool) -> Iterator[dict[str, Any]]:
    if message_type in _BALANCE_TYPES:
        yield line_facts(body, trusted=trusted)
        return
    embedded = body.get("balance_lines")
    lines = [line for line in embedded if isinstance(line, Mapping)] if isinstance(embedded, list) else []
    for line in lines:
        yield line_facts(line, trusted=trusted)
    if not lines:  # a refused onboarding is in the account's trail even without lines
        yield {"line_id": None, "kind": None, "amount_minor": None, "currency": None, "author": None}


def rows_for(raw: object, message_type: str | None, registry: ProducerRegistry, now: datetime) -> list[dict[str, Any]]:
    """The audit rows of one refused envelope; none when it names no account."""
    if not isinstance(raw, Mapping) or message_type not in {*_BALANCE_TYPES, ONBOARD}:
        return []
    body = raw.get("body")
    account = account_of(message_type, body)
    if account is None or not isinstance(body, Mapping):
        return []
    trusted = authentic(raw, registry, now)
    common = {
        "account_id": account, "message_type": message_type, "message_id": _text(raw.get("id"), 64),
        "producer": _text(raw.get("producer"), 100), "authenticated": trusted, "created_at": now,
    }
    return [{**common, **line} for line in _lines(message_type, body, trusted)]


def record(session: Session, rejection_id: int, rows: list[dict[str, Any]]) -> None:
    """Insert the audit rows of a rejection, in the rejection's own transaction."""
    if rows:
        session.execute(insert(BalanceRejection), [{**row, "rejection_id": rejection_id} for row in rows])
