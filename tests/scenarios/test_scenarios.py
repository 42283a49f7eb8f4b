"""Every ``*.json`` scenario in this folder through `billing simulate`, checked against its ``expect``.

The scenario format is the acceptance one (settings, until, messages); ``expect`` may hold
``invoices`` (account, issue_date, total, in issue order), ``credit`` (per account), ``rejected``
(the codes, in order) and ``events`` (a count, default: one per invoice).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.scenarios.simulation import simulate

pytestmark = pytest.mark.e2e  # each case runs `billing simulate` in a process of its own

HERE = Path(__file__).parent
SCENARIOS = sorted(HERE.glob("*.json"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_scenario(path: Path) -> None:
    expect = json.loads(path.read_text())["expect"]
    result = simulate(path)
    invoices = result["invoices"]
    if "invoices" in expect:
        got = [(i["account"], i["issue_date"], Decimal(i["total"])) for i in invoices]
        want = [(i["account"], i["issue_date"], Decimal(i["total"])) for i in expect["invoices"]]
        assert got == want
    for account, credit in expect.get("credit", {}).items():
        assert Decimal(result["balances"][account]["credit"]) == Decimal(credit)
    if "rejected" in expect:
        assert [r["code"] for r in result["rejected"]] == expect["rejected"]
    assert len(result["events"]) == expect.get("events", len(invoices))
    assert len({event["id"] for event in result["events"]}) == len(result["events"])
