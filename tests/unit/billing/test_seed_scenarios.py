"""The seed scenarios, on the core alone: one ``compose`` call per local date, each fed the last one's state.

Seed 003 (Aria, "Create an Account with a Retroactive Start Date and an Alternate Bill Day"):
created 30 Nov 2018, active since 5 Oct 2018, monthly plan of 30.00, billed on the 15th.

    Sep 15      Oct 5  Oct 15          Nov 15     Nov 30 Dec 1  Dec 15          Jan 15
      |-----------|stub--|--------------|-----------|-----|------|--------------|--------
                  start                            onboard D+1

A (combine): on Nov 30 one invoice: Oct 5..14 at 10/30, Oct 15..Nov 14, Nov 15..Dec 14 = 70.00.
B (separate): on Nov 30 the stub alone; on Dec 1 one invoice per catch-up period; then each 15th.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from models.billing.balance import MovementKind
from tests.unit.billing.helpers import (
    Account,
    InvoiceSummary,
    credit,
    d,
    monthly,
    run_daily,
    summarize,
    terms,
)

ONBOARD, UNTIL = d("2018-11-30"), d("2019-01-16")

SCENARIO_A: list[InvoiceSummary] = [
    (d("2018-11-30"), [
        (d("2018-10-05"), d("2018-10-14"), 1000),  # 30.00 x 10/30 (cycle Sep 15..Oct 14 = 30 days)
        (d("2018-10-15"), d("2018-11-14"), 3000),  # full month
        (d("2018-11-15"), d("2018-12-14"), 3000),  # full month, contains Nov 30: due in advance
    ]),  # total 10 + 30 + 30 = 70.00
    (d("2018-12-15"), [(d("2018-12-15"), d("2019-01-14"), 3000)]),
    (d("2019-01-15"), [(d("2019-01-15"), d("2019-02-14"), 3000)]),
]

SCENARIO_B: list[InvoiceSummary] = [
    (d("2018-11-30"), [(d("2018-10-05"), d("2018-10-14"), 1000)]),  # invoice 1: the stub, 30.00 x 10/30
    (d("2018-12-01"), [(d("2018-10-15"), d("2018-11-14"), 3000)]),  # invoice 2, by the next day's run
    (d("2018-12-01"), [(d("2018-11-15"), d("2018-12-14"), 3000)]),  # invoice 3, same run
    (d("2018-12-15"), [(d("2018-12-15"), d("2019-01-14"), 3000)]),  # then every 15th
    (d("2019-01-15"), [(d("2019-01-15"), d("2019-02-14"), 3000)]),
]


def aria(combine: bool) -> Account:
    return Account([terms("2018-10-05", monthly(15), 3000, plan="pro-monthly")], combine=combine)


def test_scenario_a_combined_invoices() -> None:
    invoices = run_daily(aria(combine=True), ONBOARD, UNTIL)
    assert summarize(invoices) == SCENARIO_A
    assert [invoice.total_minor for invoice in invoices] == [7000, 3000, 3000]
    first = invoices[0]
    assert [(c.period.days, c.period.cycle_days) for c in first.charges] == [(10, 30), (31, 31), (30, 30)]


def test_scenario_b_separate_invoices() -> None:
    invoices = run_daily(aria(combine=False), ONBOARD, UNTIL)
    assert summarize(invoices) == SCENARIO_B
    assert [invoice.total_minor for invoice in invoices] == [1000, 3000, 3000, 3000, 3000]


@pytest.mark.parametrize("combine", [True, False])
def test_both_scenarios_bill_the_same_periods_for_the_same_amounts(combine: bool) -> None:
    invoices = run_daily(aria(combine=combine), ONBOARD, UNTIL)
    billed = sorted(line for _, lines in summarize(invoices) for line in lines)
    assert billed == sorted(line for _, lines in SCENARIO_A for line in lines)


@pytest.mark.parametrize("combine", [True, False])
def test_redelivering_the_onboarding_or_rerunning_a_day_changes_nothing(combine: bool) -> None:
    once = run_daily(aria(combine=combine), ONBOARD, UNTIL)
    twice = aria(combine=combine)
    day = ONBOARD
    while day <= UNTIL:
        twice.bill(day, onboarding=day == ONBOARD)
        twice.bill(day, onboarding=day == ONBOARD)  # every message and every bill run delivered twice
        day += timedelta(days=1)
    assert summarize(twice.invoices) == summarize(once)


# -- the other shared acceptance cases, on the core ------------------------------------------------------


def test_bill_day_31_through_february_2023() -> None:
    account = Account([terms("2023-01-10", monthly(31), 3100)], combine=True)
    invoices = run_daily(account, d("2023-01-10"), d("2023-04-01"))
    assert summarize(invoices) == [
        (d("2023-01-10"), [(d("2023-01-10"), d("2023-01-30"), 2100)]),  # 31.00 x 21/31 (Dec 31..Jan 30)
        (d("2023-01-31"), [(d("2023-01-31"), d("2023-02-27"), 3100)]),  # 28 days, full price
        (d("2023-02-28"), [(d("2023-02-28"), d("2023-03-30"), 3100)]),  # clamped anchor, back to 31 after
        (d("2023-03-31"), [(d("2023-03-31"), d("2023-04-29"), 3100)]),  # no drift: Mar 31, then Apr 30
    ]


def test_jpy_stub_in_leap_february() -> None:
    # the shell converts the instant to Tokyo's date; the core sees local dates only
    account = Account([terms("2024-02-20", monthly(1), 1000)], combine=True)
    invoices = run_daily(account, d("2024-02-20"), d("2024-03-02"))
    assert summarize(invoices) == [
        (d("2024-02-20"), [(d("2024-02-20"), d("2024-02-29"), 345)]),  # 1000 yen x 10/29 = 344.83 -> 345
        (d("2024-03-01"), [(d("2024-03-01"), d("2024-03-31"), 1000)]),
    ]


def test_credit_carried_forward_until_used_up() -> None:
    account = Account([terms("2021-03-01", monthly(1), 2000)], combine=True)
    goodwill = credit("c-1", 5000, 1, "2021-03-10")  # 50.00, arrives Mar 10, after March's invoice
    invoices = run_daily(account, d("2021-03-01"), d("2021-06-02"), arrivals={d("2021-03-10"): [goodwill]})
    assert [(i.issue_date, i.recurring_minor, i.credit_minor, i.total_minor) for i in invoices] == [
        (d("2021-03-01"), 2000, 0, 2000),  # before the credit
        (d("2021-04-01"), 2000, 2000, 0),  # 50 - 20 = 30 left
        (d("2021-05-01"), 2000, 2000, 0),  # 30 - 20 = 10 left
        (d("2021-06-01"), 2000, 1000, 1000),  # 10 - 10 = 0 left
    ]
    assert [m.movement for i in invoices for m in i.balance] == [MovementKind.APPLIED] * 3
    assert account.balance == ()
