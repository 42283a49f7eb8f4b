"""``billing audit`` and ``billing approve | decline``: the balance trail and its second identity."""

from __future__ import annotations

import csv
import sys
from datetime import datetime

from jobs.approvals import Decision, count_decision, decide
from jobs.audit_trail import FIELDS, audit_rows
from jobs.context import JobContext
from models.billing.approvals import Decision as DecisionKind
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
