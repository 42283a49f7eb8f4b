"""The rules of a decision on a held reversal: who may decide, once, and what an approval takes."""

from __future__ import annotations

import pytest

from models.billing.approvals import reversal_amount, reversal_refusal, same_person


def refused(identity: str, *, earlier: str | None = None, author: str = "agent-9") -> str | None:
    return reversal_refusal(reversal_id="r-1", earlier=earlier, author=author, identity=identity)


def test_a_second_identity_may_decide_a_waiting_reversal() -> None:
    assert refused("ops-lead") is None


@pytest.mark.parametrize("identity", ["agent-9", " Agent-9 ", "AGENT-9"])
def test_the_author_may_not_decide(identity: str) -> None:
    assert refused(identity) == f"{identity} asked for reversal r-1; a second identity must decide"


def test_the_comparison_is_the_one_it_is_given() -> None:
    """The worker passes its confusable-folded skeleton (``jobs.identities.same_person``)."""
    look_alike = "\u0430gent-9"  # Cyrillic a
    assert refused(look_alike) is None  # the core's own comparison only folds case and space
    assert reversal_refusal(reversal_id="r-1", earlier=None, author="agent-9", identity=look_alike,
                            same=lambda one, other: one.replace("\u0430", "a") == other) is not None
    assert same_person(" AGENT-9", "agent-9")


@pytest.mark.parametrize("earlier", ["approved", "declined"])
def test_the_first_decision_is_final(earlier: str) -> None:
    assert refused("ops-lead", earlier=earlier) == f"reversal r-1 was already {earlier}"
    assert refused("agent-9", earlier=earlier) == f"reversal r-1 was already {earlier}"  # whoever asks


@pytest.mark.parametrize("identity", ["", "   "])
def test_a_decision_needs_an_identity(identity: str) -> None:
    assert refused(identity) == "a decision needs the identity of who decides (--as)"


@pytest.mark.parametrize(("asked", "remaining", "taken"), [
    (8000, 8000, 8000),  # nothing used meanwhile: all it asked
    (8000, 5000, 5000),  # an invoice used 30.00 meanwhile: what is left
    (8000, 0, 0),  # used up or reversed meanwhile: nothing
    (5000, 8000, 5000),  # never more than it asked
    (8000, -100, 0),  # never negative
])
def test_an_approval_takes_what_is_left_at_most_what_was_asked(asked: int, remaining: int, taken: int) -> None:
    assert reversal_amount(asked, remaining) == taken
