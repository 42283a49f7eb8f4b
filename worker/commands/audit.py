"""``billing audit`` and ``billing approve | decline``: the balance trail and its second identity.

``billing approve LINE`` decides on a balance line held for approval; ``billing approve --reversal
REVERSAL_ID`` on a reversal held for approval (``decline`` likewise).
"""

from __future__ import annotations

import csv
import sys
from datetime import datetime

from jobs.approvals import (
    DecidedReversal,
    Decision,
    ReversalRequest,
    count_decision,
    count_reversal_decision,
    decide,
    decide_reversal,
)
from jobs.audit_trail import FIELDS, audit_rows
from jobs.context import JobContext
from models.billing.approvals import Decision as DecisionKind
from models.billing.money import format_amount
from models.tables.store import transaction
from worker.commands import context

EXIT_REFUSED = 2


def _cell(value: object) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def audit(account_id: str, *, as_csv: bool, ctx: JobContext | None = None) -> int:
    """Every balance event of the account: CSV with a header, or aligned text with ``-`` for empty cells."""
    with transaction((ctx or context()).sessions) as session:
        rows = audit_rows(session, account_id)
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(FIELDS)
        writer.writerows([_cell(row[name]) for name in FIELDS] for row in rows)
        return 0
    for row in rows:
        print("  ".join(_cell(row[name]) or "-" for name in FIELDS))
    return 0


def approve_or_decline(line_id: str, *, decision: DecisionKind, identity: str, reason: str,
                       ctx: JobContext | None = None) -> int:
    """Approve or decline a pending line, as someone other than its author (audited, append-only)."""
    ctx = ctx or context()
    with transaction(ctx.sessions) as session:
        line, refusal = decide(session, Decision(line_id, decision, identity, reason), ctx.now(),
                               ctx.settings.approver_identities)
        if refusal is not None:
            session.rollback()
            print(f"billing {decision}: {refusal}", file=sys.stderr)
            return EXIT_REFUSED
    assert line is not None
    count_decision(line, decision)
    print(f"balance line {line_id} {decision} by {identity.strip()}")
    return 0


def approve_or_decline_reversal(reversal_id: str, *, decision: DecisionKind, identity: str, reason: str,
                                ctx: JobContext | None = None) -> int:
    """Approve or decline a held reversal, as a configured approver other than its author (audited,
    append-only). An approval reverses what is left of the line now, at most what the reversal asked."""
    ctx = ctx or context()
    with transaction(ctx.sessions) as session:
        decided, refusal = decide_reversal(session, ReversalRequest(reversal_id, decision, identity, reason),
                                           ctx.now(), ctx.settings.approver_identities)
        if refusal is not None:
            session.rollback()
            print(f"billing {decision}: {refusal}", file=sys.stderr)
            return EXIT_REFUSED
    assert decided is not None
    count_reversal_decision(decided)
    print(f"reversal {reversal_id} of balance line {decided.line.line_id} {decision} by {decided.identity}: "
          f"{_reversal_effect(decided)}")
    return 0


def _reversal_effect(decided: DecidedReversal) -> str:
    currency = decided.line.currency
    asked = f"{format_amount(decided.reversal.amount_minor, currency)} {currency}"
    if decided.applied_minor is None:
        return f"nothing reversed (it asked for {asked})"
    if decided.applied_minor == 0:
        return f"nothing is left of the line, nothing reversed (it asked for {asked})"
    applied = f"{format_amount(decided.applied_minor, currency)} {currency}"
    if decided.applied_minor < decided.reversal.amount_minor:
        return f"{applied} reversed, all that was left of the line (it asked for {asked})"
    return f"{applied} reversed"
