"""The audit trail of an account (``billing audit``): its balance lines and its lifecycle messages.

One row per event, oldest first: each line as it was accepted or held (``pending_approval``), each
``approved`` / ``declined`` decision, each movement (``applied`` to an invoice, ``lapsed`` at expiry,
``reversed``) and each refused message (``rejected:<code>``), with producer, author, reason, message
id and time. A reversal above its producer's approval threshold is a ``reversal_pending_approval``
row (its ``amount_minor`` what it asked for, negated) and, once decided, a ``reversal_approved`` or
``reversal_declined`` row (``author`` is who decided; producer and message id are the reversal's,
as a line's decision shows the line's); an approval that took something is followed
by its ``reversed`` movement, one whose line had nothing left by none. ``reversal_id`` names the
reversal on its rows and on every ``reversed`` movement (``billing approve --reversal`` takes it).
The ledger reconciles from these rows alone: a credit line (credit, gift, referral, or
a negative adjustment) counts once it is active (``accepted``, or ``pending_approval`` then
``approved``), and

    credit available = sum |amount_minor| of active credit lines
                       - sum |amount_minor| of their applied, lapsed and reversed rows

for lines whose ``expires_on`` has not passed: the figure the invoicing code applies
(``models.billing.balance.remaining_credit`` over ``models.tables.mapping.open_balance_lines``); a
held reversal takes nothing until it is approved, so its rows do not enter the sum.
``amount_minor`` is the line's signed amount on line rows and the consumed magnitude, negated, on
movement rows. A refused message's producer reads ``unverified:<name>`` when no key of that
producer signed it (its author is then unknown: anyone may write a name into a message). Each
lifecycle message (``subscription.*``, ``account.update``) is a row whose ``event`` is its type,
``line_id`` its change_id, ``kind`` what it did to ``subscription`` (``change``, ``pause``, ``resume``,
``cancel``, ``bill_day``), ``effective_date`` when, ``expires_on`` a pause's end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.balance_lines import REVERSE
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_line_decision import BalanceLineDecision
from models.tables.balance_line_reversal import BalanceLineReversal
from models.tables.balance_rejection import BalanceRejection
from models.tables.invoice import Invoice
from models.tables.processed_message import ProcessedMessage
from models.tables.rejection import Rejection
from models.tables.reversal_decision import ReversalDecision
from models.tables.subscription import Subscription
from models.tables.subscription_change import SubscriptionChange

FIELDS = ("at", "event", "line_id", "kind", "amount_minor", "percent", "currency", "effective_date",
          "expires_on", "producer", "author", "reason", "message_id", "invoice", "subscription", "reversal_id")
"""The columns of ``billing audit --csv``, in order."""

def _line_rows(session: Session, account_id: str) -> list[tuple[datetime, int, dict[str, Any]]]:
    rows: list[tuple[datetime, int, dict[str, Any]]] = []
    held = _held_reversals(session, account_id)
    lines = session.scalars(select(BalanceLine).where(BalanceLine.account_id == account_id).order_by(BalanceLine.id))
    for line in lines:
        base = {"line_id": line.line_id, "kind": line.kind, "currency": line.currency,
                "effective_date": line.effective_date, "expires_on": line.expires_on,
                "producer": line.producer, "message_id": line.message_id}
        rows.append((line.created_at, 0, {
            **base, "event": "pending_approval" if line.requires_approval else "accepted",
            "amount_minor": line.amount_minor, "percent": line.percent, "author": line.author, "reason": line.reason,
        }))
        decisions = session.scalars(select(BalanceLineDecision).where(BalanceLineDecision.balance_line_id == line.id)
                                    .order_by(BalanceLineDecision.id))
        rows += [(d.created_at, 1, {**base, "event": d.decision, "author": d.identity, "reason": d.reason})
                 for d in decisions]
        for reversal, decision in held.get(line.id, []):
            rows += _held_rows(base, reversal, decision)
        entries = session.execute(
            select(BalanceEntry, Invoice.number).outerjoin(Invoice, Invoice.id == BalanceEntry.invoice_id)
            .where(BalanceEntry.balance_line_id == line.id).order_by(BalanceEntry.id)
        ).all()
        reversal_ids = _reversal_ids(session, [entry.message_id for entry, _ in entries
                                               if entry.kind == "reversed" and entry.message_id])
        rows += [(entry.created_at, 4, _movement(base, entry, number, reversal_ids)) for entry, number in entries]
    return rows


def _held_reversals(session: Session, account_id: str
                    ) -> dict[int, list[tuple[BalanceLineReversal, ReversalDecision | None]]]:
    """The account's held reversals by line id, each with its decision (None while it waits)."""
    found: dict[int, list[tuple[BalanceLineReversal, ReversalDecision | None]]] = {}
    query = (select(BalanceLineReversal, ReversalDecision)
             .outerjoin(ReversalDecision, ReversalDecision.reversal_id == BalanceLineReversal.reversal_id)
             .where(BalanceLineReversal.account_id == account_id).order_by(BalanceLineReversal.id))
    for reversal, decision in session.execute(query):
        found.setdefault(reversal.balance_line_id, []).append((reversal, decision))
    return found


def _held_rows(base: dict[str, Any], reversal: BalanceLineReversal, decision: ReversalDecision | None
               ) -> list[tuple[datetime, int, dict[str, Any]]]:
    """A held reversal as it arrived, and its decision once there is one."""
    rows = [(reversal.created_at, 2, {
        **base, "event": "reversal_pending_approval", "amount_minor": -reversal.amount_minor,
        "producer": reversal.producer, "author": reversal.author, "reason": reversal.reason,
        "message_id": reversal.message_id, "reversal_id": reversal.reversal_id,
    })]
    if decision is not None:
        rows.append((decision.created_at, 3, {
            **base, "event": f"reversal_{decision.decision}", "author": decision.identity, "reason": decision.reason,
            "producer": reversal.producer, "message_id": reversal.message_id, "reversal_id": reversal.reversal_id,
        }))
    return rows


def _reversal_ids(session: Session, message_ids: list[str]) -> dict[str, str]:
    """The ``reversal_id`` of each reversal message: held ones from their row, the others from their idempotency key."""
    if not message_ids:
        return {}
    by_message = {message_id: key.removeprefix(f"{REVERSE}:") for message_id, key in session.execute(
        select(ProcessedMessage.message_id, ProcessedMessage.key)
        .where(ProcessedMessage.key.startswith(f"{REVERSE}:", autoescape=True),
               ProcessedMessage.message_id.in_(message_ids))
    )}
    by_message.update(session.execute(
        select(BalanceLineReversal.message_id, BalanceLineReversal.reversal_id)
        .where(BalanceLineReversal.message_id.in_(message_ids))).all())
    return by_message


def _movement(base: dict[str, Any], entry: BalanceEntry, invoice: str | None,
              reversal_ids: dict[str, str]) -> dict[str, Any]:
    if entry.kind == "reversed":  # who asked for it; applications and lapses are the system's
        who = {"producer": entry.producer, "author": entry.author, "reason": entry.reason,
               "message_id": entry.message_id, "reversal_id": reversal_ids.get(entry.message_id or "")}
    else:
        who = {"producer": None, "author": None, "message_id": None,
               "reason": f"applied to invoice {invoice}" if invoice else "expired unused"}
    return {**base, **who, "event": entry.kind, "amount_minor": -entry.amount_minor, "invoice": invoice}


def _rejection_rows(session: Session, account_id: str) -> list[tuple[datetime, int, dict[str, Any]]]:
    found = session.execute(
        select(BalanceRejection, Rejection.code, Rejection.reason)
        .join(Rejection, Rejection.id == BalanceRejection.rejection_id)
        .where(BalanceRejection.account_id == account_id).order_by(BalanceRejection.id)
    )
    return [
        (row.created_at, 5, {
            "event": f"rejected:{code}", "line_id": row.line_id, "kind": row.kind, "amount_minor": row.amount_minor,
            "currency": row.currency, "producer": _claimed(row), "author": row.author, "reason": reason,
            "message_id": row.message_id,
        })
        for row, code, reason in found
    ]


def _claimed(row: BalanceRejection) -> str:
    """The producer as the refused message named it, marked when no key of it signed the message."""
    return str(row.producer) if row.authenticated else f"unverified:{row.producer or '-'}"


def _change_rows(session: Session, account_id: str) -> list[tuple[datetime, int, dict[str, Any]]]:
    """The account's lifecycle messages: ``event`` is the message type, ``line_id`` its change_id."""
    found = session.execute(
        select(SubscriptionChange, Subscription.key, Subscription.currency)
        .join(Subscription, Subscription.id == SubscriptionChange.subscription_id)
        .where(SubscriptionChange.account_id == account_id).order_by(SubscriptionChange.id)
    )
    return [
        (change.created_at, 6, {
            "event": change.message_type, "line_id": change.change_id, "kind": change.kind,
            "amount_minor": change.amount_minor, "currency": currency if change.amount_minor is not None else None,
            "effective_date": change.effective, "expires_on": change.until, "producer": change.producer,
            "author": change.author, "reason": change.reason, "message_id": change.message_id, "subscription": key,
        })
        for change, key, currency in found
    ]


def audit_rows(session: Session, account_id: str) -> list[dict[str, Any]]:
    """Every balance and lifecycle event of the account, oldest first (``FIELDS``; absent values are None)."""
    events = [*_line_rows(session, account_id), *_rejection_rows(session, account_id),
              *_change_rows(session, account_id)]
    events.sort(key=lambda item: (item[0], item[1]))
    return [{name: row.get(name) for name in FIELDS} | {"at": at} for at, _, row in events]
