"""What a producer may reverse: the rules of grants, applied to taking a line's remainder away.

A reversal moves money as surely as a grant, so it follows the same rules: the producer's kinds,
its rate, its per-line and per-account-day caps (reversed amounts count towards the day's total),
and its approval threshold. And ownership: a producer reverses only the lines it created, unless
its configuration says ``reverses_others: true`` (a refunds desk, say).

A reversal above the approval threshold is refused (``limit_exceeded``) rather than held: a held
reversal would need its own approval trail, so it is left to a person with a line-level decision.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobs import permissions
from jobs.errors import Forbidden, LimitExceeded
from jobs.producers import Producer
from models.billing.money import format_amount
from models.tables.balance_line import BalanceLine


def check(session: Session, producer: Producer, line: BalanceLine, remaining: int, now: datetime) -> None:
    """Raise ``Forbidden`` or ``LimitExceeded`` when ``producer`` may not reverse ``remaining`` of ``line``."""
    if line.producer != producer.name and not producer.reverses_others:
        raise Forbidden(f"producer {producer.name} may not reverse line {line.line_id}: producer {line.producer} "
                        "created it (a producer reverses only its own lines unless configured reverses_others)")
    amount = None if line.amount_minor is None else remaining
    percent = None  # taking a percent discount away only raises the invoice: kinds and ownership suffice
    held = permissions.check_line(session, producer, account_id=line.account_id, kind=line.kind,
                                  amount_minor=amount, currency=line.currency, now=now, percent=percent,
                                  verb="reverse")
    if held:
        what = f"{format_amount(remaining, line.currency)} {line.currency}"
        raise LimitExceeded(f"reversing {what} of line {line.line_id} is above producer {producer.name}'s approval "
                            "threshold; a reversal cannot wait for approval: ask an approver to decide on the line")
