"""Body rules: each failure names its exact field path and says why (DESIGN.md §3)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from jobs.errors import InvalidMessage, Rejected
from jobs.routes import MESSAGE_TYPES
from jobs.schemas import (
    BODY_MODELS,
    CreateBalanceLine,
    OnboardAccount,
    ReverseBalanceLine,
    SubscriptionSpec,
    TriggerBillRun,
    parse_body,
)
from tests.unit.jobs.helpers import DELETE, changed, line_body, onboard_body

ONBOARD = "account.onboard"
CREATE = "balance_line.create"


def invalid(message_type: str, body: object) -> str:
    with pytest.raises(InvalidMessage) as caught:
        parse_body(message_type, body)
    assert caught.value.code == "invalid"
    return caught.value.reason


def test_every_message_type_has_a_body_model() -> None:
    assert set(BODY_MODELS) == set(MESSAGE_TYPES)


def test_a_valid_onboarding_parses_with_defaults_and_minor_units() -> None:
    body = parse_body(ONBOARD, onboard_body())
    assert isinstance(body, OnboardAccount)
    subscription = body.subscriptions[0]
    assert (subscription.interval, subscription.interval_count, subscription.timing, subscription.proration) == (
        "month", 1, "advance", "daily"
    )
    assert subscription.amount == "30.00" and subscription.amount_minor == 3000
    assert body.start_date == date(2018, 10, 5) and body.effective_bill_day == 15
    assert body.combine_invoices is None and body.balance_lines == []


def test_subscription_minor_units_follow_the_account_currency() -> None:
    jpy = changed(changed(onboard_body(), "account.currency", "JPY"), "subscriptions.0.amount", "345")
    body = parse_body(ONBOARD, jpy)
    assert isinstance(body, OnboardAccount) and body.subscriptions[0].amount_minor == 345
    kwd = changed(changed(onboard_body(), "account.currency", "KWD"), "subscriptions.0.amount", "1.250")
    body = parse_body(ONBOARD, kwd)
    assert isinstance(body, OnboardAccount) and body.subscriptions[0].amount_minor == 1250


def test_bill_day_defaults_to_the_start_day() -> None:
    body = parse_body(ONBOARD, changed(onboard_body(), "bill_day", DELETE))
    assert isinstance(body, OnboardAccount) and body.bill_day is None and body.effective_bill_day == 5


def test_a_subscription_alone_does_not_know_its_minor_units() -> None:
    with pytest.raises(RuntimeError, match="OnboardAccount"):
        _ = SubscriptionSpec(plan="p", amount="1.00").amount_minor


WITH_LINE: dict[str, Any] = {
    **onboard_body(),
    "balance_lines": [{k: v for k, v in line_body().items() if k != "account"}],
}

ONBOARD_CASES = [
    # (path, value, expected reason: the field path first, then why)
    ("bill_day", 0, "bill_day: must be between 1 and 31, not 0"),
    ("bill_day", 32, "bill_day: must be between 1 and 31, not 32"),
    ("bill_day", "15", "bill_day: must be a whole number, not a string"),
    ("bill_day", 15.0, "bill_day: must be a whole number, not a number"),
    ("bill_day", True, "bill_day: must be a whole number, not a boolean"),
    ("start_date", "2018-02-30", "start_date: '2018-02-30' is not a calendar date"),
    ("start_date", "05/10/2018", "start_date: '05/10/2018' is not a date written YYYY-MM-DD"),
    ("start_date", DELETE, "start_date: is required"),
    ("combine_invoices", "yes", "combine_invoices: must be true or false, not a string"),
    ("account.id", "", "account.id: must not be empty"),
    ("account.id", "a/b", "account.id: 'a/b' may only contain letters, digits and . _ : @ -"),
    ("account.id", "x" * 65, "account.id: must be at most 64 characters, not 65"),
    ("account.name", "n" * 201, "account.name: must be at most 200 characters, not 201"),
    ("account.currency", "XYZ", "account.currency: 'XYZ' is not an ISO 4217 currency code"),
    ("account.currency", "usd", "account.currency: 'usd' is not an ISO 4217 currency code"),
    ("account.timezone", "Mars/Olympus", "account.timezone: 'Mars/Olympus' is not an IANA time zone"),
    ("account.timezone", "../../etc/passwd", "account.timezone: '../../etc/passwd' is not an IANA time zone"),
    ("account.extra", 1, "account.extra: is not a known field"),
    ("account", "acme", "account: must be an object, not a string"),
    ("subscriptions", [], "subscriptions: must hold at least 1 item"),
    ("subscriptions", [{"plan": "p", "amount": "1.00"}] * 51, "subscriptions: must hold at most 50 items, not 51"),
    ("subscriptions.0.amount", "30.001", "subscriptions.0.amount: '30.001' has more than 2 decimals for USD"),
    ("subscriptions.0.amount", 30, 'subscriptions.0.amount: must be a decimal string such as "30.00", not'),
    ("subscriptions.0.amount", 30.5, "subscriptions.0.amount: must be a decimal string"),
    ("subscriptions.0.amount", "-1.00", "subscriptions.0.amount: must not be negative"),
    ("subscriptions.0.amount", "1e3", "subscriptions.0.amount: '1e3' is not a plain decimal number"),
    ("subscriptions.0.amount", "NaN", "subscriptions.0.amount: 'NaN' is not a plain decimal number"),
    ("subscriptions.0.amount", " 30.00", "subscriptions.0.amount: ' 30.00' is not a plain decimal number"),
    ("subscriptions.0.amount", DELETE, "subscriptions.0.amount: is required"),
    ("subscriptions.0.plan", "", "subscriptions.0.plan: must not be empty"),
    ("subscriptions.0.interval", "day", "subscriptions.0.interval: must be one of 'month', 'year' or 'week'"),
    ("subscriptions.0.interval_count", 0, "subscriptions.0.interval_count: must be between 1 and 120, not 0"),
    ("subscriptions.0.interval_count", 121, "subscriptions.0.interval_count: must be between 1 and 120"),
    ("subscriptions.0.timing", "later", "subscriptions.0.timing: must be one of 'advance' or 'arrears'"),
    ("subscriptions.0.proration", "hourly", "subscriptions.0.proration: must be one of"),
    ("subscriptions.0.bill_month", 13, "subscriptions.0.bill_month: must be between 1 and 12, not 13"),
    ("subscriptions.0.bill_weekday", 3, "subscriptions.0.bill_weekday: only week intervals have a bill weekday"),
    ("subscriptions.0.seats", 3, "subscriptions.0.seats: is not a known field"),
    ("surprise", 1, "surprise: is not a known field"),
]


@pytest.mark.parametrize(("path", "value", "reason"), ONBOARD_CASES)
def test_onboarding_rules_name_the_field(path: str, value: object, reason: str) -> None:
    assert invalid(ONBOARD, changed(onboard_body(), path, value)).startswith(reason)


def test_week_subscriptions_take_a_weekday_not_a_month() -> None:
    week = changed(onboard_body(), "subscriptions.0.interval", "week")
    body = parse_body(ONBOARD, changed(week, "subscriptions.0.bill_weekday", 1))
    assert isinstance(body, OnboardAccount) and body.subscriptions[0].bill_weekday == 1
    reason = invalid(ONBOARD, changed(week, "subscriptions.0.bill_month", 2))
    assert reason == "subscriptions.0.bill_month: only month and year intervals have a bill month"


EMBEDDED_CASES = [
    ("balance_lines.0.amount", "5.001", "balance_lines.0.amount: '5.001' has more than 2 decimals for USD"),
    ("balance_lines.0.amount", "0", "balance_lines.0.amount: a credit must be greater than zero"),
    ("balance_lines.0.kind", "bonus", "balance_lines.0.kind: must be one of"),
    ("balance_lines.0.account", "acme", "balance_lines.0.account: is not a known field"),
]


@pytest.mark.parametrize(("path", "value", "reason"), EMBEDDED_CASES)
def test_embedded_balance_lines_are_checked_against_the_account(path: str, value: object, reason: str) -> None:
    assert invalid(ONBOARD, changed(WITH_LINE, path, value)).startswith(reason)


def test_an_embedded_line_in_another_currency_is_a_currency_mismatch() -> None:
    with pytest.raises(Rejected) as refused:
        parse_body(ONBOARD, changed(WITH_LINE, "balance_lines.0.currency", "EUR"))
    assert refused.value.code == "currency_mismatch"
    assert refused.value.reason == "balance_lines.0.currency: EUR does not match the account's currency USD"


def test_embedded_line_ids_are_unique() -> None:
    body = {**WITH_LINE, "balance_lines": WITH_LINE["balance_lines"] * 2}
    assert invalid(ONBOARD, body) == "balance_lines.1.line_id: 'c-1' appears twice"


def test_an_embedded_line_exposes_its_minor_units() -> None:
    body = parse_body(ONBOARD, WITH_LINE)
    assert isinstance(body, OnboardAccount) and body.balance_lines[0].amount_minor == 500


@pytest.mark.parametrize(
    ("fields", "minor", "percent"),
    [
        ({}, 500, None),
        ({"kind": "gift", "amount": "0.01"}, 1, None),
        ({"kind": "referral", "expires_on": "2026-12-31"}, 500, None),
        ({"kind": "discount", "amount": None, "percent": "12.5"}, None, Decimal("12.5")),
        ({"kind": "discount", "amount": None, "percent": "100"}, None, Decimal("100")),
        ({"kind": "discount", "amount": None, "percent": "0.0001"}, None, Decimal("0.0001")),
        ({"kind": "adjustment", "amount": "-2.50", "expires_on": "2026-12-31"}, -250, None),
        ({"kind": "adjustment", "amount": "7.00"}, 700, None),
        ({"currency": "JPY", "amount": "500"}, 500, None),
        ({"effective_date": "2026-01-01", "expires_on": "2026-01-01"}, 500, None),
    ],
)
def test_valid_balance_lines(fields: dict[str, Any], minor: int | None, percent: Decimal | None) -> None:
    body = {k: v for k, v in line_body(**fields).items() if v is not None}
    line = parse_body(CREATE, body)
    assert isinstance(line, CreateBalanceLine)
    assert (line.amount_minor, line.percent_value) == (minor, percent)


LINE_CASES = [
    ({"amount": None}, "amount: is required (a discount may give a percent instead)"),
    ({"percent": "10"}, "percent: give either an amount or a percent, not both"),
    ({"amount": None, "percent": "10"}, "percent: only a discount may be a percent; a credit needs an amount"),
    ({"kind": "discount", "amount": None, "percent": "0"}, "percent: must be greater than 0 and at most 100"),
    ({"kind": "discount", "amount": None, "percent": "100.01"}, "percent: must be greater than 0 and at most 100"),
    ({"kind": "discount", "amount": None, "percent": "-5"}, "percent: must be greater than 0"),
    ({"kind": "discount", "amount": None, "percent": "12.34567"}, "percent: '12.34567' has more than 4 decimals"),
    ({"kind": "discount", "amount": None, "percent": 10}, 'percent: must be a decimal string such as "30.00"'),
    ({"kind": "discount", "amount": None, "percent": 12.5}, "percent: must be a decimal string"),
    ({"amount": "5.001"}, "amount: '5.001' has more than 2 decimals for USD"),
    ({"currency": "JPY", "amount": "5.5"}, "amount: '5.5' has more than 0 decimals for JPY"),
    ({"amount": 5}, 'amount: must be a decimal string such as "30.00", not the JSON number 5'),
    ({"amount": 5.0}, "amount: must be a decimal string"),
    ({"amount": "0.00"}, "amount: a credit must be greater than zero, not '0.00'"),
    ({"kind": "gift", "amount": "-1.00"}, "amount: a gift must be greater than zero"),
    ({"kind": "referral", "amount": "0"}, "amount: a referral must be greater than zero"),
    ({"kind": "discount", "amount": "-1.00"}, "amount: a discount must be greater than zero"),
    ({"kind": "adjustment", "amount": "0.00"}, "amount: an adjustment must not be zero"),
    ({"amount": "99999999999999999999.00"}, "amount: '99999999999999999999.00' is too large"),
    ({"kind": "discount", "expires_on": "2026-12-31"}, "expires_on: only credits, gifts, referrals and negative"),
    ({"kind": "adjustment", "amount": "3.00", "expires_on": "2026-12-31"}, "expires_on: only credits"),
    ({"effective_date": "2026-02-01", "expires_on": "2026-01-31"},
     "expires_on: 2026-01-31 is before effective_date 2026-02-01"),
    ({"expires_on": "2026-02-30"}, "expires_on: '2026-02-30' is not a calendar date"),
    ({"effective_date": 20260101}, "effective_date: must be a date written YYYY-MM-DD, not a number"),
    ({"kind": "bonus"}, "kind: must be one of 'credit', 'gift', 'referral', 'discount' or 'adjustment'"),
    ({"currency": "EURO"}, "currency: 'EURO' is not an ISO 4217 currency code"),
    ({"line_id": "c 1"}, "line_id: 'c 1' may only contain letters"),
    ({"line_id": "l" * 101}, "line_id: must be at most 100 characters, not 101"),
    ({"account": ""}, "account: must not be empty"),
    ({"label": "   "}, "label: must not be blank"),
    ({"label": "x" * 201}, "label: must be at most 200 characters, not 201"),
    ({"reason": "r" * 501}, "reason: must be at most 500 characters, not 501"),
    ({"author": None}, "author: must be a string, not null"),
    ({"approved_by": "me"}, "approved_by: is not a known field"),
]


@pytest.mark.parametrize(("fields", "reason"), LINE_CASES)
def test_balance_line_rules_name_the_field(fields: dict[str, Any], reason: str) -> None:
    body = {k: v for k, v in line_body(**fields).items() if v is not None or k == "author"}
    assert invalid(CREATE, body).startswith(reason)


def test_reverse_and_trigger_bodies() -> None:
    reverse = {"line_id": "c-1", "reversal_id": "r-1", "account": "acme", "reason": "typo", "author": "ops:li"}
    assert isinstance(parse_body("balance_line.reverse", reverse), ReverseBalanceLine)
    assert invalid("balance_line.reverse", {**reverse, "reversal_id": ""}) == "reversal_id: must not be empty"
    run = parse_body("bill_run.trigger", {"date": "2026-03-01"})
    assert isinstance(run, TriggerBillRun) and run.date == date(2026, 3, 1)
    assert isinstance(parse_body("bill_run.trigger", {}), TriggerBillRun)
    assert invalid("bill_run.trigger", {"date": "2026-03-01T00:00:00Z"}).startswith("date: '2026-03-01T00:00")


@pytest.mark.parametrize(
    ("message_type", "body", "reason"),
    [
        ("bill_run.trigger", [], "body: must be an object, not a list"),
        ("bill_run.trigger", None, "body: must be an object, not null"),
        ("account.close", {}, "type: unknown message type 'account.close'"),
    ],
)
def test_documents_that_are_not_bodies(message_type: str, body: object, reason: str) -> None:
    assert invalid(message_type, body) == reason


def test_only_the_first_failure_is_reported() -> None:
    body = changed(changed(onboard_body(), "bill_day", 0), "account.currency", "XYZ")
    assert invalid(ONBOARD, body).startswith("account.currency:")
