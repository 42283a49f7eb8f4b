"""The balance audit trail of an account (``billing audit``) and second-identity decisions.

One row per event, oldest first: each line as it was accepted or held (``pending_approval``), each
``approved`` / ``declined`` decision, each movement (``applied`` to an invoice, ``lapsed`` at expiry,
``reversed``) and each refused message (``rejected:<code>``), with producer, author, reason, message
id and time. The ledger reconciles from these rows alone: a credit line (credit, gift, referral, or
a negative adjustment) counts once it is active (``accepted``, or ``pending_approval`` then
``approved``), and

    credit available = sum |amount_minor| of active credit lines
                       - sum |amount_minor| of their applied, lapsed and reversed rows

for lines whose ``expires_on`` has not passed: the figure the invoicing code applies
(``jobs.invoicing.remaining_credit`` over ``models.tables.mapping.open_balance_lines``).
``amount_minor`` is the line's signed amount on line rows and the consumed magnitude, negated, on
movement rows. A refused message's producer reads ``unverified:<name>`` when no key of that
producer signed it (its author is then unknown: anyone may write a name into a message).
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_line_decision import BalanceLineDecision
from models.tables.balance_rejection import BalanceRejection
from models.tables.invoice import Invoice
from models.tables.rejection import Rejection

log = structlog.get_logger(__name__)

FIELDS = ("at", "event", "line_id", "kind", "amount_minor", "percent", "currency", "effective_date",
          "expires_on", "producer", "author", "reason", "message_id", "invoice")
"""The columns of ``billing audit --csv``, in order."""

EXIT_REFUSED = 2


def _line_rows(session: Session, account_id: str) -> list[tuple[datetime, int, dict[str, Any]]]:
    rows: list[tuple[datetime, int, dict[str, Any]]] = []
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
        entries = session.execute(
            select(BalanceEntry, Invoice.number).outerjoin(Invoice, Invoice.id == BalanceEntry.invoice_id)
            .where(BalanceEntry.balance_line_id == line.id).order_by(BalanceEntry.id)
        )
        rows += [(entry.created_at, 2, _movement(base, entry, number)) for entry, number in entries]
    return rows


def _movement(base: dict[str, Any], entry: BalanceEntry, invoice: str | None) -> dict[str, Any]:
    if entry.kind == "reversed":  # who asked for it; applications and lapses are the system's
        who = {"producer": entry.producer, "author": entry.author, "reason": entry.reason,
               "message_id": entry.message_id}
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
        (row.created_at, 3, {
            "event": f"rejected:{code}", "line_id": row.line_id, "kind": row.kind, "amount_minor": row.amount_minor,
            "currency": row.currency, "producer": _claimed(row), "author": row.author, "reason": reason,
            "message_id": row.message_id,
        })
        for row, code, reason in found
    ]


def _claimed(row: BalanceRejection) -> str:
    """The producer as the refused message named it, marked when no key of it signed the message."""
    return str(row.producer) if row.authenticated else f"unverified:{row.producer or '-'}"


def audit_rows(session: Session, account_id: str) -> list[dict[str, Any]]:
    """Every balance event of the account, oldest first (``FIELDS``; absent values are None)."""
    events = _line_rows(session, account_id) + _rejection_rows(session, account_id)
    events.sort(key=lambda item: (item[0], item[1]))
    return [{name: row.get(name) for name in FIELDS} | {"at": at} for at, _, row in events]


def _cell(value: object) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def print_audit(session: Session, account_id: str, *, as_csv: bool) -> int:
    """``billing audit``: CSV with a header, or aligned text with ``-`` for empty cells."""
    rows = audit_rows(session, account_id)
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(FIELDS)
        writer.writerows([_cell(row[name]) for name in FIELDS] for row in rows)
        return 0
    for row in rows:
        print("  ".join(_cell(row[name]) or "-" for name in FIELDS))
    return 0


@dataclass(frozen=True)
class Decision:
    line_id: str
    decision: str  # "approved" or "declined"
    identity: str
    reason: str


def _same_person(one: str, other: str) -> bool:
    return one.strip().casefold() == other.strip().casefold()


def _refusal(session: Session, line: BalanceLine, decision: Decision) -> str | None:
    """Why this decision cannot be recorded, or None."""
    if not line.requires_approval:
        return f"balance line {line.line_id} needs no approval"
    earlier = session.scalar(select(BalanceLineDecision.decision)
                             .where(BalanceLineDecision.balance_line_id == line.id).limit(1))
    if earlier is not None:
        return f"balance line {line.line_id} was already {earlier}"
    if not decision.identity.strip():
        return "a decision needs the identity of who decides (--as)"
    if _same_person(decision.identity, line.author):
        return f"{decision.identity} wrote line {line.line_id}; a second identity must decide"
    reversed_ = session.scalar(select(BalanceEntry.id).where(BalanceEntry.balance_line_id == line.id,
                                                             BalanceEntry.kind == "reversed").limit(1))
    if reversed_ is not None and decision.decision == "approved":
        return f"balance line {line.line_id} was reversed: nothing is left to approve"
    return None


def decide(session: Session, decision: Decision, now: datetime) -> tuple[BalanceLine | None, str | None]:
    """Record an approval or a decline (append-only) under the account lock; (line, refusal)."""
    from worker.db import lock_account

    line = session.scalar(select(BalanceLine).where(BalanceLine.line_id == decision.line_id))
    if line is None:
        return None, f"no balance line {decision.line_id}"
    lock_account(session, line.account_id)
    refusal = _refusal(session, line, decision)
    if refusal is not None:
        return line, refusal
    session.add(BalanceLineDecision(balance_line_id=line.id, decision=decision.decision,
                                    identity=decision.identity.strip(), reason=decision.reason or decision.decision,
                                    created_at=now))
    return line, None


def count_decision(line: BalanceLine, decision: str) -> None:
    """Counters of a committed decision; an approval grants the line's amount."""
    from worker.metrics import BALANCE_AMOUNT, BALANCE_LINES

    BALANCE_LINES.labels(producer=line.producer, kind=line.kind, outcome=decision).inc()
    if decision == "approved" and line.amount_minor is not None:
        BALANCE_AMOUNT.labels(producer=line.producer, kind=line.kind, currency=line.currency).inc(
            abs(line.amount_minor)
        )
    log.info("balance_line_decided", line_id=line.line_id, decision=decision, account_id=line.account_id)
