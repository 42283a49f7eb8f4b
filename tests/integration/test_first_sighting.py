"""A redelivery is judged at the instant the worker first saw it, however its check is ordered.

The pipeline verifies an envelope against the worker's clock and looks its first sighting up only
when that fails (most messages are on their first delivery); a redelivery that passes now is
judged again at its first sighting once counted. Both ways must give what judging at the first
sighting gives.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from jobs.context import JobContext
from jobs.outcomes import Outcome
from jobs.pipeline import Received, receive
from tests.integration.bill_run_harness import Harness
from tests.integration.producers import onboarding

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TYPE = "account.onboard"


class _FailsOnce:
    """A handler that fails its first call as a lost connection would, then succeeds."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ctx: JobContext, session: Session, received: Received, body: Any) -> Outcome:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("database went away")
        return Outcome.PROCESSED


def test_a_retry_after_the_tolerance_is_judged_at_its_first_delivery(clean_pg: Engine, pg_url: str) -> None:
    harness = Harness(pg_url, START)
    try:
        envelope = harness.envelope(TYPE, onboarding("late"))
        handler = _FailsOnce()
        with pytest.raises(ConnectionError):
            receive(harness.ctx, TYPE, envelope, handler, harness.delivery(envelope))
        # When the broker retries it two hours later, far beyond the 300 s tolerance of sent_at
        harness.clock.set(START + timedelta(hours=2))
        # Then it is judged at its first delivery: fresh
        assert receive(harness.ctx, TYPE, envelope, handler, harness.delivery(envelope)) is Outcome.PROCESSED
    finally:
        harness.close()


def test_a_redelivery_that_passes_now_is_still_judged_at_its_first_delivery(clean_pg: Engine, pg_url: str) -> None:
    # Given a message stamped 20 minutes ahead, accepted under a tolerance of an hour, whose work failed
    harness = Harness(pg_url, START, signature_tolerance_seconds=3600)
    try:
        harness.clock.set(START + timedelta(minutes=20))
        envelope = harness.envelope(TYPE, onboarding("ahead"))
        harness.clock.set(START)
        handler = _FailsOnce()
        with pytest.raises(ConnectionError):
            receive(harness.ctx, TYPE, envelope, handler, harness.delivery(envelope))
        # When the tolerance is lowered to 300 s and the retry comes 18 minutes later (2 minutes off now)
        strict = dataclasses.replace(harness.ctx, settings=harness.settings.model_copy(
            update={"signature_tolerance_seconds": 300}))
        harness.clock.set(START + timedelta(minutes=18))
        # Then it is judged at its first delivery, 20 minutes ahead: refused
        assert receive(strict, TYPE, envelope, handler, harness.delivery(envelope)) is Outcome.REJECTED
        assert handler.calls == 1
    finally:
        harness.close()
