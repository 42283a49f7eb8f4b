"""Every example body in ``examples/`` is a valid body of its message type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.schemas import parse_body

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
TYPES = {
    "acme-onboard.json": "account.onboard",
    "subscription-add.json": "subscription.add",
    "subscription-change.json": "subscription.change",
    "subscription-pause.json": "subscription.pause",
    "subscription-resume.json": "subscription.resume",
    "subscription-cancel.json": "subscription.cancel",
    "account-update.json": "account.update",
}


def test_every_example_is_listed() -> None:
    assert {path.name for path in EXAMPLES.glob("*.json")} == set(TYPES)


@pytest.mark.parametrize(("name", "message_type"), sorted(TYPES.items()))
def test_the_example_is_a_valid_body(name: str, message_type: str) -> None:
    parse_body(message_type, json.loads((EXAMPLES / name).read_text()))
