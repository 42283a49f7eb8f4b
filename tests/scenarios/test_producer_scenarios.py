"""Producer permissions, limits and approval through `billing simulate` (``settings.producers``).

Each ``producers/*.json`` is an acceptance-format scenario whose ``expect`` lists every invoice
(account, issue date, total and each line as [kind, balance line, amount]), the unused credit per
account, and every rejection in order (its code, and a text its reason must contain).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scenarios.simulation import simulate

pytestmark = pytest.mark.e2e  # each case runs `billing simulate` in a process of its own

HERE = Path(__file__).parent / "producers"
SCENARIOS = sorted(HERE.glob("*.json"))


def test_there_is_a_scenario_for_each_limit() -> None:
    assert [path.stem for path in SCENARIOS] == [
        "approval-pending", "custom-signature", "daily-cap", "forbidden-kind", "per-line-cap",
    ]


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_producer_scenario(path: Path) -> None:
    expect = json.loads(path.read_text())["expect"]
    result = simulate(path)
    invoices = [
        {"account": i["account"], "issue_date": i["issue_date"], "total": i["total"],
         "lines": [[line["kind"], line.get("balance_line"), line["amount"]] for line in i["lines"]]}
        for i in result["invoices"]
    ]
    assert invoices == expect["invoices"]
    assert {account: balance["credit"] for account, balance in result["balances"].items()} == expect["credit"]
    rejected = result["rejected"]
    assert [r["code"] for r in rejected] == [r["code"] for r in expect["rejected"]]
    for got, want in zip(rejected, expect["rejected"], strict=True):
        assert want["reason"] in got["reason"], got["reason"]
    assert len(result["events"]) == len(invoices)
