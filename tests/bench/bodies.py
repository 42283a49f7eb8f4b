"""``account.onboard`` bodies: a retroactive start with a three-period catch-up, or one period.

Three periods whatever today is: bill day 15, start on the 5th of the month before the last anchor
(the 15th on or before today), so the catch-up is the stub 5th..14th, one full period, and the
current period (timing ``advance``). One period: start today, bill day today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from dateutil.relativedelta import relativedelta

BILL_DAY = 15
PLAN = "bench-monthly"
AMOUNT = "10.00"


def three_period_start(today: date) -> date:
    last_anchor = today.replace(day=BILL_DAY) if today.day >= BILL_DAY else (
        today.replace(day=BILL_DAY) - relativedelta(months=1))
    return (last_anchor - relativedelta(months=1)).replace(day=5)


def onboard_body(account_id: str, start: date, bill_day: int) -> dict[str, Any]:
    return {"account": {"id": account_id, "name": f"Bench {account_id}", "currency": "USD", "timezone": "UTC"},
            "start_date": start.isoformat(), "bill_day": bill_day,
            "subscriptions": [{"plan": PLAN, "amount": AMOUNT}]}


def catch_up_body(account_id: str, today: date) -> dict[str, Any]:
    return onboard_body(account_id, three_period_start(today), BILL_DAY)


def one_period_body(account_id: str, today: date) -> dict[str, Any]:
    return onboard_body(account_id, today, today.day)


@dataclass(frozen=True)
class Expected:
    """What one onboarding must produce, from ``billing preview``'s own computation (no database)."""

    document: dict[str, Any]
    lines: int
    total_minor: int


def expected_invoice(body: dict[str, Any], today: date) -> Expected:
    from jobs.clock import SystemClock
    from jobs.preview import preview_body
    from worker.settings import get_settings

    invoices = preview_body(body, today, get_settings(), SystemClock())["invoices"]
    if len(invoices) != 1:
        raise ValueError(f"expected one catch-up invoice, the preview gives {len(invoices)}")
    document = invoices[0]
    return Expected(document, len(document["lines"]), int(document["total"].replace(".", "")))
