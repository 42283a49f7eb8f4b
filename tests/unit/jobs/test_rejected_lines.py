"""The audit rows of a refused message: trusted facts only, the author only when signed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobs.envelope import make_envelope
from jobs.rejected_lines import rows_for
from tests.unit.jobs.helpers import NEW_SECRET, registry

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def signed(message_type: str, body: dict[str, Any], secret: str = NEW_SECRET) -> dict[str, Any]:
    return make_envelope(message_type, body, producer="crm", key_id="crm-2026", secret=secret.encode(), now=NOW)


def line(**fields: Any) -> dict[str, Any]:
    return {"line_id": "c-1", "account": "acme", "kind": "credit", "amount": "5.00", "currency": "USD",
            "author": "support:ana", **fields}


def test_a_signed_line_keeps_its_author_and_amount() -> None:
    [row] = rows_for(signed("balance_line.create", line()), "balance_line.create", registry(), NOW)
    assert {key: row[key] for key in ("account_id", "line_id", "kind", "amount_minor", "currency", "producer",
                                      "authenticated", "author")} == {
        "account_id": "acme", "line_id": "c-1", "kind": "credit", "amount_minor": 500, "currency": "USD",
        "producer": "crm", "authenticated": True, "author": "support:ana",
    }


def test_a_forged_line_keeps_no_author_nor_unknown_kinds_and_bad_amounts() -> None:
    raw = signed("balance_line.create", line(kind="bonus", amount="5.001"), secret="not-the-secret-at-all")
    [row] = rows_for(raw, "balance_line.create", registry(), NOW)
    assert (row["authenticated"], row["author"], row["kind"], row["amount_minor"]) == (False, None, None, None)


def test_an_onboarding_gives_one_row_per_embedded_line_or_one_for_the_account() -> None:
    lines = [line(line_id="e-1"), line(line_id="e-2", amount="7.00")]
    for line_ in lines:
        del line_["account"]
    body = {"account": {"id": "acme", "name": "Acme"}, "balance_lines": lines}
    rows = rows_for(signed("account.onboard", body), "account.onboard", registry(), NOW)
    assert [(row["account_id"], row["line_id"], row["amount_minor"]) for row in rows] == [
        ("acme", "e-1", 500), ("acme", "e-2", 700)
    ]
    [bare] = rows_for(signed("account.onboard", {"account": {"id": "acme"}}), "account.onboard", registry(), NOW)
    assert (bare["account_id"], bare["line_id"]) == ("acme", None)


def test_messages_without_an_account_give_no_rows() -> None:
    assert rows_for(signed("bill_run.trigger", {}), "bill_run.trigger", registry(), NOW) == []
    assert rows_for({"undecodable": "\xff"}, None, registry(), NOW) == []
    assert rows_for(signed("balance_line.create", line(account="x" * 65)), "balance_line.create", registry(), NOW) == []
