"""Our own rejection reasons keep their words; values that give themselves away are still masked."""

from __future__ import annotations

import pytest

from jobs.redaction import REDACTED, scrub_text, scrub_values


@pytest.mark.parametrize("reason", [
    "api_key: is not a known field",
    "account.name: must not be blank",
    "label: must be at most 200 characters, not 300",
])
def test_a_field_named_like_a_secret_does_not_hide_the_reason(reason: str) -> None:
    assert scrub_values(reason) == reason


def test_values_that_give_themselves_away_are_masked_in_reasons() -> None:
    secret = "ab" * 32
    text = f"unknown producer 'jane.doe@example.org' signed {secret} via postgresql://bill:pw@db/x"
    assert scrub_values(text) == f"unknown producer '[email]' signed {REDACTED} via postgresql://{REDACTED}@db/x"


def test_postgresql_failing_row_details_are_masked() -> None:
    detail = 'null value in column "id"\nDETAIL:  Failing row contains (null, Jane Canaryfield, USD, (1,2), 15).'
    assert scrub_text(detail) == f'null value in column "id"\nDETAIL:  Failing row contains ({REDACTED}).'
    assert "Canaryfield" not in scrub_values(detail)
