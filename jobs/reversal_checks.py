"""What a producer may reverse: the rules of grants, applied to taking a line's remainder away.

A reversal moves money as surely as a grant, so it follows the same rules: the producer's kinds,
its rate, its per-line and per-account-day caps (reversed amounts count towards the day's total,
held reversals from when they arrive, as held lines do), and its approval threshold. And
ownership: a producer reverses only the lines it created, unless its configuration says
``reverses_others: true`` (a refunds desk, say).

Ownership and the caps refuse (``forbidden``, ``limit_exceeded``). Above the approval threshold
the reversal is held, as a line is: ``check`` says so, and the handler records it in
``balance_line_reversals`` and takes nothing from the line. A configured approver other than the
reversal's author then approves it (``billing approve --reversal``), which reverses what is left
of the line at that moment (at most what the reversal asked for), or declines it. While it is
held the line keeps applying to invoices as before.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobs import permissions
from jobs.errors import Forbidden
from jobs.producers import Producer
from models.tables.balance_line import BalanceLine


def check(session: Session, producer: Producer, line: BalanceLine, remaining: int, now: datetime) -> bool:
    """Raise ``Forbidden`` or ``LimitExceeded`` when ``producer`` may not reverse ``remaining`` of ``line``;
    return True when the reversal is held for approval."""
    if line.producer != producer.name and not producer.reverses_others:
        raise Forbidden(f"producer {producer.name} may not reverse line {line.line_id}: producer {line.producer} "
                        "created it (a producer reverses only its own lines unless configured reverses_others)")
    amount = None if line.amount_minor is None else remaining
    percent = None  # taking a percent discount away only raises the invoice: kinds and ownership suffice
    return permissions.check_line(session, producer, account_id=line.account_id, kind=line.kind,
                                  amount_minor=amount, currency=line.currency, now=now, percent=percent,
                                  verb="reverse")
