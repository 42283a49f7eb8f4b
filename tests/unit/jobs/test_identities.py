"""A second identity cannot be made by look-alike, and only configured approvers decide."""

from __future__ import annotations

import pytest

from jobs.identities import configured, same_person, skeleton
from models.billing.approvals import Decision, refusal


@pytest.mark.parametrize("look_alike", [
    "\u0430gent-7",          # Cyrillic a
    "agent\u200b-7",         # zero-width space
    "\uff41gent-7",          # full-width a
    "AGENT-7 ",              # case and space
    "ag\u00adent-7",         # soft hyphen
    "\U0001d41agent-7",      # mathematical bold a
])
def test_a_look_alike_of_the_author_is_the_author(look_alike: str) -> None:
    assert same_person(look_alike, "agent-7")
    assert refusal(line_id="l-1", requires_approval=True, earlier=None, author="agent-7", identity=look_alike,
                   decision=Decision.APPROVED, reversed_=False, same=same_person) is not None


def test_distinct_names_stay_distinct() -> None:
    assert not same_person("agent-7", "agent-8")
    assert skeleton("ops-lead") != skeleton("ops-lea")


def test_only_a_configured_approver_decides_under_its_configured_spelling() -> None:
    approvers = ("ops-lead", "Chloé")
    assert configured("OPS-LEAD", approvers) == "ops-lead"
    assert configured("\u043eps-lead", approvers) == "ops-lead"  # Cyrillic o still names the configured one
    assert configured("mallory", approvers) is None
    assert configured("ops-lead", ()) is None
