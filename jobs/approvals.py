"""Second-identity decisions on balance lines and reversals held for approval: append-only, under the account lock.

The rules are the core's (``models.billing.approvals``); this module reads and writes the rows.
A line's decision goes to ``balance_line_decisions``; a held reversal's to ``reversal_decisions``,
and its approval appends the ``reversed`` entry the reversal would have made when it arrived, for
what is left of the line now (at most what it asked for; nothing when nothing is left).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs import identities
from jobs.balance_lines import remaining_of
from jobs.metrics import BALANCE_AMOUNT, BALANCE_LINES
from models.billing.approvals import Decision as DecisionKind
from models.billing.approvals import refusal, reversal_amount, reversal_refusal
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_line_decision import BalanceLineDecision
from models.tables.balance_line_reversal import BalanceLineReversal
from models.tables.locks import lock_account
from models.tables.reversal_decision import ReversalDecision

log = structlog.get_logger(__name__)


def _unconfigured(identity: str, approvers: Sequence[str]) -> str | None:
    """Why ``identity`` may not decide at all: a name that no configured approver has."""
    if identities.configured(identity, approvers) is None and identity.strip():
        return f"{identity.strip()!r} is not a configured approver (BILLING_APPROVERS lists who may approve or decline)"
    return None


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
    unknown = _unconfigured(decision.identity, approvers)
    if unknown is not None:
        return None, unknown
    approver = identities.configured(decision.identity, approvers)
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


@dataclass(frozen=True)
class ReversalRequest:
    """A decision asked for on the held reversal ``reversal_id`` (its producer's id for it)."""

    reversal_id: str
    decision: DecisionKind
    identity: str
    reason: str


@dataclass(frozen=True)
class DecidedReversal:
    """A recorded decision: the held reversal, its line, and what an approval took (None: declined)."""

    reversal: BalanceLineReversal
    line: BalanceLine
    decision: DecisionKind
    identity: str
    applied_minor: int | None


def decide_reversal(session: Session, request: ReversalRequest, now: datetime,
                    approvers: Sequence[str] = ()) -> tuple[DecidedReversal | None, str | None]:
    """Record an approval or a decline of a held reversal (append-only) under the account lock;
    (decided, refusal).

    The same rules as a line's: only a configured approver, recorded under its configured spelling;
    never the reversal's author or a look-alike of them; the first decision is final. An approval
    appends the ``reversed`` entry (the reversal's producer, author, reason and message id) for what
    is left of the line now, at most what it asked for; when nothing is left it applies nothing.
    """
    unknown = _unconfigured(request.identity, approvers)
    if unknown is not None:
        return None, unknown
    approver = identities.configured(request.identity, approvers)
    held = session.scalar(select(BalanceLineReversal).where(BalanceLineReversal.reversal_id == request.reversal_id))
    if held is None:
        return None, f"no reversal {request.reversal_id} is held for approval"
    lock_account(session, held.account_id)
    earlier = session.scalar(select(ReversalDecision.decision)
                             .where(ReversalDecision.reversal_id == held.reversal_id).limit(1))
    why = reversal_refusal(reversal_id=held.reversal_id, earlier=earlier, author=held.author,
                           identity=request.identity, same=identities.same_person)
    if why is not None:
        return None, why
    line = session.get_one(BalanceLine, held.balance_line_id)
    applied = None
    if request.decision is DecisionKind.APPROVED:
        applied = reversal_amount(held.amount_minor, remaining_of(session, line))
    identity = approver or request.identity.strip()
    session.add(ReversalDecision(reversal_id=held.reversal_id, decision=request.decision, identity=identity,
                                 reason=request.reason or request.decision, applied_minor=applied, created_at=now))
    if applied:
        session.add(BalanceEntry(balance_line_id=line.id, kind="reversed", amount_minor=applied, invoice_id=None,
                                 invoice_line_id=None, message_id=held.message_id, producer=held.producer,
                                 author=held.author, reason=held.reason, created_at=now))
    return DecidedReversal(held, line, request.decision, identity, applied), None


def count_reversal_decision(decided: DecidedReversal) -> None:
    """Counters and the log line of a committed decision on a held reversal (who decided is in the
    audit trail, not the log: identities are personal data)."""
    line, held = decided.line, decided.reversal
    BALANCE_LINES.labels(producer=held.producer, kind=line.kind, outcome=f"reversal_{decided.decision}").inc()
    log.info("balance_line_reversal_decided", reversal_id=held.reversal_id, line_id=line.line_id,
             decision=decided.decision, account_id=held.account_id,
             asked_minor=held.amount_minor, applied_minor=decided.applied_minor)
