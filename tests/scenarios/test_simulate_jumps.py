"""`billing simulate` jumping over idle hours prints exactly what ticking every hour prints.

Each scenario runs both ways (``--hourly`` is the reference) and the whole printed document is
compared: invoices with their numbers, dates and lines, balances, events and rejections, in order.
Only what is random by construction is left out: an event's ``id`` (a uuid4 per outbox row), a
rejection's ``message_id`` (the uuid4 that simulate gives each envelope it signs) and that id
where a rejection's reason quotes it (a conflict names the message that holds the key).

The hourly reference costs a few milliseconds per simulated hour, so the random scenarios span
weeks here, not years: ``SIMULATE_JUMPS_EXAMPLES`` and ``SIMULATE_JUMPS_MAX_DAYS`` widen the
search for a deliberate long run (e.g. 8 and 800).
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.scenarios.random_scenarios import random_scenario
from tests.scenarios.simulation import ForkedSimulator

EXAMPLES = int(os.environ.get("SIMULATE_JUMPS_EXAMPLES", "4"))
MAX_DAYS = int(os.environ.get("SIMULATE_JUMPS_MAX_DAYS", "21"))
RANDOM_BY_CONSTRUCTION = {"events": "id", "rejected": "message_id"}
MESSAGE_ID = re.compile(r"\b[0-9a-f]{32}\b")


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """The document without the fields that are random by construction."""
    kept = copy.deepcopy(document)
    for section, field in RANDOM_BY_CONSTRUCTION.items():
        for item in kept[section]:
            item.pop(field)
    for rejection in kept["rejected"]:
        rejection["reason"] = MESSAGE_ID.sub("<message id>", rejection["reason"])
    return kept


@pytest.fixture(scope="module")
def simulator() -> Iterator[ForkedSimulator]:
    yield ForkedSimulator()


def both_ways(simulator: ForkedSimulator, scenario: dict[str, Any], workdir: Path) -> tuple[Any, Any]:
    path = workdir / "scenario.json"
    path.write_text(json.dumps(scenario, indent=1), encoding="utf-8")
    hourly, jumps = simulator.run([(path, True), (path, False)], workdir)
    assert len({event["id"] for event in jumps["events"]}) == len(jumps["events"])
    return comparable(hourly), comparable(jumps)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), span=st.integers(min_value=1, max_value=MAX_DAYS))
def test_random_scenarios_print_the_same_both_ways(
    simulator: ForkedSimulator, tmp_path_factory: pytest.TempPathFactory, seed: int, span: int
) -> None:
    """No shrinking (each example costs seconds): a failure names its seed and span, which rebuild it."""
    scenario = random_scenario(random.Random(seed), max_span_days=span)
    hourly, jumps = both_ways(simulator, scenario, tmp_path_factory.mktemp("jumps"))
    assert jumps == hourly


def onboard(account: str, at: str, *, zone: str, start_date: str, bill_day: int | None = None,
            interval: str = "month", currency: str = "USD", combine: bool | None = None,
            lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "account": {"id": account, "name": account.title(), "currency": currency, "timezone": zone},
        "start_date": start_date,
        "subscriptions": [{"plan": f"{interval}ly", "amount": "30.00", "interval": interval, "interval_count": 1,
                           "timing": "advance", "proration": "daily"}],
    }
    if bill_day is not None:
        body["bill_day"] = bill_day
    if combine is not None:
        body["combine_invoices"] = combine
    if lines:
        body["balance_lines"] = lines
    return {"at": at, "type": "account.onboard", "body": body}


def credit(line_id: str, account: str, at: str, amount: str = "12.50", **extra: str) -> dict[str, Any]:
    return {"at": at, "type": "balance_line.create",
            "body": {"line_id": line_id, "account": account, "kind": "credit", "amount": amount, "currency": "USD",
                     "label": "credit", "reason": "fixed case", "author": "test:sim", **extra}}


FIXED: dict[str, dict[str, Any]] = {
    # Paris springs forward on 2021-03-28 and falls back on 2021-10-31; Santiago's 2022-09-11 has no
    # midnight (00:00 -> 01:00), and Sydney's clocks go back on 2022-04-03: bill days on those dates,
    # a weekly plan, a credit that expires on the change day.
    "dst-change-days": {"until": "2022-09-13", "messages": [
        onboard("santiago", "2022-09-09T15:00:00Z", zone="America/Santiago", start_date="2022-08-11", bill_day=11,
                combine=False),
        onboard("santiago-weekly", "2022-09-09T15:30:00Z", zone="America/Santiago", start_date="2022-09-04",
                interval="week"),
        credit("s-1", "santiago", "2022-09-09T16:00:00Z", expires_on="2022-09-11"),
        onboard("kiritimati", "2022-09-10T09:00:00Z", zone="Pacific/Kiritimati", start_date="2022-08-11",
                bill_day=11),
        onboard("minus-twelve", "2022-09-10T10:00:00Z", zone="Etc/GMT+12", start_date="2022-08-11", bill_day=11),
    ]},
    "paris-spring-forward": {"until": "2021-03-29", "messages": [
        onboard("paris", "2021-03-26T23:30:00Z", zone="Europe/Paris", start_date="2021-02-28", bill_day=28,
                interval="month", lines=[{"line_id": "p-0", "kind": "gift", "amount": "5.00", "currency": "USD",
                                          "label": "gift", "reason": "fixed case", "author": "test:sim",
                                          "expires_on": "2021-03-27"}]),
        credit("p-1", "paris", "2021-03-27T22:00:00Z", amount="40.00", expires_on="2021-03-28"),
    ]},
    # Bill day 31 onboarded late with separate invoices: Dec 31 and Jan 31 (caught up, the second held
    # to the next day), then Feb 29 of a leap year; a credit expires on Feb 29.
    "bill-day-31": {"until": "2024-03-01", "messages": [
        onboard("thirty-one", "2024-02-27T12:00:00Z", zone="America/New_York", start_date="2023-12-31",
                bill_day=31, combine=False),
        credit("t-1", "thirty-one", "2024-02-27T20:00:00Z", expires_on="2024-02-29"),
    ]},
    "parked-line-account-30-minutes-later": {"until": "2018-12-02", "messages": [
        credit("early-1", "late", "2018-11-30T10:00:00Z"),
        onboard("late", "2018-11-30T10:30:00Z", zone="UTC", start_date="2018-10-05", bill_day=1),
    ]},
    "parked-line-account-never-comes": {"until": "2018-12-01", "messages": [
        credit("orphan-1", "ghost", "2018-11-30T10:00:00Z"),
        credit("orphan-2", "ghost", "2018-11-30T10:59:59Z"),
        onboard("other", "2018-11-30T12:00:00Z", zone="Asia/Kathmandu", start_date="2018-11-30"),
    ]},
}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_cases_print_the_same_both_ways(simulator: ForkedSimulator, tmp_path: Path, name: str) -> None:
    scenario = {"settings": {"combine_invoices": True}, **FIXED[name]}
    hourly, jumps = both_ways(simulator, scenario, tmp_path)
    assert jumps == hourly
    assert hourly["invoices"] or hourly["rejected"]  # the case exercises something
    if name == "parked-line-account-never-comes":
        assert [r["code"] for r in hourly["rejected"]] == ["unknown_account", "unknown_account"]
