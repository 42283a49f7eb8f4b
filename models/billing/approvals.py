"""When a second identity may approve or decline a balance line, or a reversal, held for approval.

A line above its producer's approval threshold is held until a second identity decides on it; so
is a reversal (``balance_line.reverse``) above that threshold. The rules are the same for both:
a decision needs an identity, never the author's (``same`` compares them), and the first decision
is final. An approved reversal takes what is left of the line when it is approved, at most what it
asked for (``reversal_amount``): the line may have been used on an invoice while the reversal waited.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class Decision(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"


class LineStatus(StrEnum):
    ACTIVE = "active"
    PENDING_APPROVAL = "pending_approval"
    DECLINED = "declined"


def line_status(requires_approval: bool, decision: str | None) -> LineStatus:
    """Derived, never stored, so the ledger stays append-only: a held line is active once approved."""
    if not requires_approval or decision == Decision.APPROVED:
        return LineStatus.ACTIVE
    return LineStatus.DECLINED if decision == Decision.DECLINED else LineStatus.PENDING_APPROVAL


def same_person(one: str, other: str) -> bool:
    """Whether two identities name the same person (case and surrounding space ignored).

    The worker compares on a stricter skeleton (``jobs.identities``), passed to ``refusal``."""
    return one.strip().casefold() == other.strip().casefold()


def refusal(*, line_id: str, requires_approval: bool, earlier: str | None, author: str, identity: str,
            decision: Decision, reversed_: bool, same: Callable[[str, str], bool] = same_person) -> str | None:
    """Why this decision cannot be recorded, or None when it can."""
    if not requires_approval:
        return f"balance line {line_id} needs no approval"
    why = _second_identity(f"balance line {line_id}", f"wrote line {line_id}", earlier=earlier, author=author,
                           identity=identity, same=same)
    if why is not None:
        return why
    if reversed_ and decision is Decision.APPROVED:
        return f"balance line {line_id} was reversed: nothing is left to approve"
    return None


def reversal_refusal(*, reversal_id: str, earlier: str | None, author: str, identity: str,
                     same: Callable[[str, str], bool] = same_person) -> str | None:
    """Why this decision on a held reversal cannot be recorded, or None when it can.

    Every held reversal needs approval (it is held only above the threshold), so there is no
    ``requires_approval`` to check; approving one whose line has nothing left is allowed: it
    applies nothing (``reversal_amount``).
    """
    return _second_identity(f"reversal {reversal_id}", f"asked for reversal {reversal_id}", earlier=earlier,
                            author=author, identity=identity, same=same)


def _second_identity(subject: str, authored: str, *, earlier: str | None, author: str, identity: str,
                     same: Callable[[str, str], bool]) -> str | None:
    """The rules every decision shares: once only, by a named identity that is not the author's."""
    if earlier is not None:
        return f"{subject} was already {earlier}"
    if not identity.strip():
        return "a decision needs the identity of who decides (--as)"
    if same(identity, author):
        return f"{identity} {authored}; a second identity must decide"
    return None


def reversal_amount(asked_minor: int, remaining_minor: int) -> int:
    """What an approved reversal takes from its line: what it asked, at most what is left now (never < 0)."""
    return max(0, min(asked_minor, remaining_minor))
