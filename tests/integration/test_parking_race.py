"""A line that parks in the same instant as its account's onboarding commits is resumed at once.

No scheduler runs here: nothing sweeps. Each pair of threads sends an onboarding and a balance
line for one account at the same moment, on PostgreSQL; afterwards no line may be left waiting.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from jobs.balance_lines import CREATE, handle_create_balance_line
from jobs.onboarding import MESSAGE_TYPE, handle_onboard_account
from jobs.outcomes import Outcome
from jobs.pipeline import receive
from models.tables.parked_message import ParkedMessage
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
