"""A line that parks in the same instant as its account's onboarding commits is resumed at once.

No scheduler runs here: nothing sweeps. Each pair of threads sends an onboarding and a balance
line for one account at the same moment, on PostgreSQL; afterwards no line may be left waiting.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from jobs import parking
from jobs.balance_lines import CREATE, handle_create_balance_line
from jobs.envelope import Envelope
from jobs.onboarding import MESSAGE_TYPE, handle_onboard_account
from jobs.outcomes import Outcome
from jobs.pipeline import Received, receive
from models.tables.account import Account
from models.tables.parked_message import ParkedMessage
from models.tables.store import transaction
from tests.integration.bill_run_harness import Harness
from tests.integration.producers import count, line, onboarding

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
PAIRS = 80


def test_no_line_is_stranded_when_it_parks_as_its_account_is_onboarded(clean_pg: Engine, pg_url: str) -> None:
    harness = Harness(pg_url, START)
    outcomes: list[tuple[str, Outcome]] = []
    try:
        def pair(number: int) -> None:
            account = f"race-{number}"
            barrier = threading.Barrier(2)
            onboard = harness.envelope(MESSAGE_TYPE, onboarding(account))
            credit = harness.envelope(CREATE, line(f"l-{number}", account=account))

            def send(envelope: dict[str, object], message_type: str, handler: object) -> None:
                barrier.wait()
                outcome = receive(harness.ctx, message_type, envelope, handler,  # type: ignore[arg-type]
                                  harness.delivery(envelope))
                outcomes.append((message_type, outcome))

            threads = [threading.Thread(target=send, args=(onboard, MESSAGE_TYPE, handle_onboard_account)),
                       threading.Thread(target=send, args=(credit, CREATE, handle_create_balance_line))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(pair, range(PAIRS)))
        parked = [outcome for kind, outcome in outcomes if kind == CREATE and outcome is Outcome.PARKED]
        resent = [message for message in harness.broker.messages if message.actor_name.endswith("balance_line")]
        assert parked, "the race was not exercised: no line parked"
        # Then every line that parked was re-sent at once, exactly once, and none waits for a sweep
        assert count(harness.engine, ParkedMessage) == 0
        assert len(resent) == len(parked)
        assert len({message.args[0]["id"] for message in resent}) == len(parked)  # type: ignore[index]
    finally:
        harness.close()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_line_that_parks_after_the_onboardings_resume_ran_is_resumed_by_its_own_commit(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """The interleaving the race above can produce, forced step by step: the line looks for its
    account (not there yet), the onboarding commits and resumes what it sees parked (nothing: the
    line has not committed), then the line's parking commits. Nothing sweeps here."""
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else request.getfixturevalue("sqlite_url")
    if backend == "postgresql":
        request.getfixturevalue("clean_pg")
    else:
        from models.migrations.runner import migrate

        migrate(url)
    harness = Harness(url, START)
    try:
        credit = harness.envelope(CREATE, line("l-late", account="late"))
        received = Received(Envelope.model_validate(credit), credit, harness.clock.now())
        with transaction(harness.ctx.sessions) as session:
            assert session.get(Account, "late") is None  # the line's lookup: no account yet
            outcome = parking.park(session, received, "late", timedelta(hours=1), harness.ctx)
            if backend == "postgresql":  # SQLite admits one writer: the onboarding would wait for this commit
                with ThreadPoolExecutor(max_workers=1) as pool:
                    assert pool.submit(harness.onboard, onboarding("late")).result() is Outcome.PROCESSED
        if backend == "sqlite":
            assert harness.onboard(onboarding("late")) is Outcome.PROCESSED
        assert outcome is Outcome.PARKED
        # Then the line is re-sent at once, by whichever commit came second, and nothing waits
        assert count(harness.engine, ParkedMessage) == 0
        resent = [message for message in harness.broker.messages if message.actor_name.endswith("balance_line")]
        assert [message.args[0]["id"] for message in resent] == [credit["id"]]  # type: ignore[index]
    finally:
        harness.close()
