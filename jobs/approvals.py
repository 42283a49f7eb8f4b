"""Second-identity decisions on balance lines held for approval: append-only, under the account lock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs import identities
from jobs.metrics import BALANCE_AMOUNT, BALANCE_LINES
from models.billing.approvals import Decision as DecisionKind
from models.billing.approvals import refusal
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_line_decision import BalanceLineDecision
from models.tables.locks import lock_account

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Decision:
    line_id: str
    decision: DecisionKind
    identity: str
    reason: str


def decide(session: Session, decision: Decision, now: datetime,
           approvers: Sequence[str] = ()) -> tuple[BalanceLine | None, str | None]:
    """Record an approval or a decline (append-only) under the account lock; (line, refusal).

    Only a configured approver decides, recorded under its configured spelling.
    """
    approver = identities.configured(decision.identity, approvers)
    if approver is None and decision.identity.strip():
        return None, (f"{decision.identity.strip()!r} is not a configured approver "
                      "(BILLING_APPROVERS lists who may approve or decline)")
    line = session.scalar(select(BalanceLine).where(BalanceLine.line_id == decision.line_id))
    if line is None:
        return None, f"no balance line {decision.line_id}"
    lock_account(session, line.account_id)
    earlier = session.scalar(select(BalanceLineDecision.decision)
                             .where(BalanceLineDecision.balance_line_id == line.id).limit(1))
    reversed_ = session.scalar(select(BalanceEntry.id).where(BalanceEntry.balance_line_id == line.id,
                                                             BalanceEntry.kind == "reversed").limit(1))
    why = refusal(line_id=line.line_id, requires_approval=line.requires_approval, earlier=earlier,
                  author=line.author, identity=decision.identity, decision=decision.decision,
                  reversed_=reversed_ is not None, same=identities.same_person)
    if why is not None:
        return line, why
    session.add(BalanceLineDecision(balance_line_id=line.id, decision=decision.decision,
                                    identity=approver or decision.identity.strip(),
                                    reason=decision.reason or decision.decision,
                                    created_at=now))
    return line, None


def count_decision(line: BalanceLine, decision: DecisionKind) -> None:
    """Counters of a committed decision; an approval grants the line's amount."""
    BALANCE_LINES.labels(producer=line.producer, kind=line.kind, outcome=decision).inc()
    if decision is DecisionKind.APPROVED and line.amount_minor is not None:
        BALANCE_AMOUNT.labels(producer=line.producer, kind=line.kind, currency=line.currency).inc(
            abs(line.amount_minor)
        )
    log.info("balance_line_decided", line_id=line.line_id, decision=decision, account_id=line.account_id)
