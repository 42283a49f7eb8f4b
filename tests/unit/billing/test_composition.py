"""Composition: what is due on the account's date, minus what was billed, grouped into invoices.

The Aria account (seed 003) is the running example: start 2018-10-05, bill day 15, 30.00 a month.

    Sep 15      Oct 5   Oct 15              Nov 15      Nov 30   Dec 15
      |-----------|stub---|-------full--------|----full----|--------|
                  start   first anchor                   as_of
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from fractions import Fraction

import pytest

from models.billing.balance import BalanceKind, MovementKind, OpenBalanceLine
from models.billing.calendar import Cadence, IntervalUnit
from models.billing.composition import (
    DEFAULT_MAX_CATCH_UP_PERIODS,
    InvoiceDraft,
    SubscriptionTerms,
    Timing,
    compose,
)
from models.billing.errors import CatchUpTooLong
from models.billing.proration import Proration
from tests.unit.billing.helpers import Account, InvoiceSummary, credit, d, monthly, summarize, terms

ADVANCE, ARREARS = Timing.ADVANCE, Timing.ARREARS
ARIA = terms("2018-10-05", monthly(15))


def onboard(subs: list[SubscriptionTerms], as_of: str, *, combine: bool = True) -> list[InvoiceSummary]:
    return summarize(compose(subs, [], d(as_of), combine=combine, onboarding=True).invoices)


# -- the catch-up at onboarding, in advance and in arrears ---------------------------------------------


@pytest.mark.parametrize(
    ("subscription", "as_of", "expected"),
    [
        # advance: every period starting on or before Nov 30, the period containing Nov 30 included
        (ARIA, "2018-11-30", [(d("2018-11-30"), [
            (d("2018-10-05"), d("2018-10-14"), 1000),  # stub: 30.00 x 10/30
            (d("2018-10-15"), d("2018-11-14"), 3000),
            (d("2018-11-15"), d("2018-12-14"), 3000),  # contains Nov 30
        ])]),
        # as_of exactly on a bill day: the period starting that day is included in advance
        (ARIA, "2018-11-15", [(d("2018-11-15"), [
            (d("2018-10-05"), d("2018-10-14"), 1000),
            (d("2018-10-15"), d("2018-11-14"), 3000),
            (d("2018-11-15"), d("2018-12-14"), 3000),  # starts on Nov 15 = as_of
        ])]),
        # the day before a bill day: that period is not due yet
        (ARIA, "2018-11-14", [(d("2018-11-14"), [
            (d("2018-10-05"), d("2018-10-14"), 1000),
            (d("2018-10-15"), d("2018-11-14"), 3000),
        ])]),
        # onboarding on the start date: just the stub
        (ARIA, "2018-10-05", [(d("2018-10-05"), [(d("2018-10-05"), d("2018-10-14"), 1000)])]),
        # arrears: only the periods already ended (due the day after their last day)
        (replace(ARIA, timing=ARREARS), "2018-11-30", [(d("2018-11-30"), [
            (d("2018-10-05"), d("2018-10-14"), 1000),  # ended Oct 14, due Oct 15
            (d("2018-10-15"), d("2018-11-14"), 3000),  # ended Nov 14, due Nov 15
        ])]),  # Nov 15..Dec 14 is still running: due Dec 15
        # arrears on the day after a period ends: that period is due
        (replace(ARIA, timing=ARREARS), "2018-11-15", [(d("2018-11-15"), [
            (d("2018-10-05"), d("2018-10-14"), 1000),
            (d("2018-10-15"), d("2018-11-14"), 3000),  # last day Nov 14, due Nov 15 = as_of
        ])]),
        # arrears on a period's last day: not ended yet
        (replace(ARIA, timing=ARREARS), "2018-11-14", [(d("2018-11-14"), [
            (d("2018-10-05"), d("2018-10-14"), 1000),
        ])]),
        # arrears, onboarding inside the stub: nothing has ended, no invoice
        (replace(ARIA, timing=ARREARS), "2018-10-10", []),
        # a start on the bill day: no stub, the first full period at once
        (terms("2018-10-15", monthly(15)), "2018-10-15", [(d("2018-10-15"), [
            (d("2018-10-15"), d("2018-11-14"), 3000),
        ])]),
        # a one-day stub: Oct 14 alone, 30.00 x 1/30 = 1.00
        (terms("2018-10-14", monthly(15)), "2018-10-14", [(d("2018-10-14"), [
            (d("2018-10-14"), d("2018-10-14"), 100),
        ])]),
        # a start in the future: nothing due yet
        (ARIA, "2018-10-04", []),
        # proration full: the stub costs the whole price
        (replace(ARIA, proration=Proration.FULL), "2018-10-20", [(d("2018-10-20"), [
            (d("2018-10-05"), d("2018-10-14"), 3000),
            (d("2018-10-15"), d("2018-11-14"), 3000),
        ])]),
        # proration none: the stub is free (a 0.00 line, so the period is still marked billed)
        (replace(ARIA, proration=Proration.NONE), "2018-10-20", [(d("2018-10-20"), [
            (d("2018-10-05"), d("2018-10-14"), 0),
            (d("2018-10-15"), d("2018-11-14"), 3000),
        ])]),
        # bill day 31 through February 2023, onboarded Mar 31: 31.00 x 21/31 = 21.00, then full months
        (terms("2023-01-10", monthly(31), 3100), "2023-03-31", [(d("2023-03-31"), [
            (d("2023-01-10"), d("2023-01-30"), 2100),
            (d("2023-01-31"), d("2023-02-27"), 3100),  # 28 days, full price
            (d("2023-02-28"), d("2023-03-30"), 3100),  # 31 days, full price
            (d("2023-03-31"), d("2023-04-29"), 3100),  # starts on as_of
        ])]),
        # bill day 30 in leap February 2024, JPY 3450 yen: 3450 x 19/30 = 2185 exactly
        (terms("2024-02-10", monthly(30), 3450), "2024-02-29", [(d("2024-02-29"), [
            (d("2024-02-10"), d("2024-02-28"), 2185),  # anchor min(30, 29) = Feb 29; Jan 30..Feb 28 = 30 days
            (d("2024-02-29"), d("2024-03-29"), 3450),
        ])]),
        # quarterly with bill_month 1 (Jan/Apr/Jul/Oct): 90.00 x 85/90 = 85.00
        (terms("2023-01-20", monthly(15, 3, bill_month=1), 9000), "2023-04-15", [(d("2023-04-15"), [
            (d("2023-01-20"), d("2023-04-14"), 8500),
            (d("2023-04-15"), d("2023-07-14"), 9000),
        ])]),
        # yearly with bill_month 1: 365.00 x 297/365 = 297.00
        (terms("2023-03-10", Cadence(IntervalUnit.YEAR, 1, 1, bill_month=1), 36500), "2024-01-01", [
            (d("2024-01-01"), [
                (d("2023-03-10"), d("2023-12-31"), 29700),
                (d("2024-01-01"), d("2024-12-31"), 36500),
            ]),
        ]),
        # every 2 weeks on Fridays from Wednesday Mar 1 2023: 14.00 x 2/14 = 2.00, then 14.00 each
        (terms("2023-03-01", Cadence(IntervalUnit.WEEK, 2, 1, bill_weekday=5), 1400), "2023-03-17", [
            (d("2023-03-17"), [
                (d("2023-03-01"), d("2023-03-02"), 200),
                (d("2023-03-03"), d("2023-03-16"), 1400),
                (d("2023-03-17"), d("2023-03-30"), 1400),
            ]),
        ]),
        # KWD, weekly on Mondays from Wednesday: 1.001 x 5/7 = 0.715 exactly
        (terms("2023-03-01", Cadence(IntervalUnit.WEEK, 1, 1, bill_weekday=1), 1001), "2023-03-01", [
            (d("2023-03-01"), [(d("2023-03-01"), d("2023-03-05"), 715)]),
        ]),
    ],
)
def test_catch_up_at_onboarding(
    subscription: SubscriptionTerms, as_of: str, expected: list[InvoiceSummary]
) -> None:
    assert onboard([subscription], as_of) == expected


def test_arrears_after_onboarding_each_period_is_due_the_day_after_it_ends() -> None:
    account = Account([replace(ARIA, timing=ARREARS)], combine=True)
    account.bill(d("2018-11-30"), onboarding=True)
    assert account.history[-1].next_bill_dates == {"sub-1": d("2018-12-15")}  # Nov 15..Dec 14 ends Dec 14
    assert account.bill(d("2018-12-14")).invoices == ()  # its last day: not due
    assert summarize(account.bill(d("2018-12-15")).invoices) == [
        (d("2018-12-15"), [(d("2018-11-15"), d("2018-12-14"), 3000)]),
    ]


# -- combining ----------------------------------------------------------------------------------------


def test_combine_true_puts_the_whole_catch_up_on_one_invoice() -> None:
    result = compose([ARIA], [], d("2018-11-30"), combine=True, onboarding=True)
    assert len(result.invoices) == 1
    assert result.hold_until is None
    assert result.billed_until == {"sub-1": d("2018-12-15")}  # end of Nov 15..Dec 14
    assert result.next_bill_dates == {"sub-1": d("2018-12-15")}
    assert result.invoices[0].total_minor == 7000  # 10.00 + 30.00 + 30.00


def test_combine_false_invoices_only_the_earliest_period_at_onboarding() -> None:
    result = compose([ARIA], [], d("2018-11-30"), combine=False, onboarding=True)
    assert summarize(result.invoices) == [(d("2018-11-30"), [(d("2018-10-05"), d("2018-10-14"), 1000)])]
    assert result.hold_until == d("2018-12-01")  # as_of + 1 day
    assert result.billed_until == {"sub-1": d("2018-10-15")}  # only the stub is billed
    assert result.next_bill_dates == {"sub-1": d("2018-12-01")}  # the rest wait for the next day


def test_combine_false_holds_until_the_next_day_then_one_invoice_per_period() -> None:
    account = Account([ARIA], combine=False)
    account.bill(d("2018-11-30"), onboarding=True)
    assert account.bill(d("2018-11-30")).invoices == ()  # a rerun on the same day: held
    assert account.hold_until == d("2018-12-01")
    second_day = account.bill(d("2018-12-01"))
    assert summarize(second_day.invoices) == [
        (d("2018-12-01"), [(d("2018-10-15"), d("2018-11-14"), 3000)]),
        (d("2018-12-01"), [(d("2018-11-15"), d("2018-12-14"), 3000)]),
    ]
    assert second_day.hold_until is None
    assert second_day.next_bill_dates == {"sub-1": d("2018-12-15")}


def test_combine_false_with_a_single_due_period_needs_no_hold() -> None:
    result = compose([ARIA], [], d("2018-10-05"), combine=False, onboarding=True)
    assert len(result.invoices) == 1
    assert result.hold_until is None
    assert result.next_bill_dates == {"sub-1": d("2018-10-15")}


def test_combine_false_outside_onboarding_issues_every_due_period_at_once() -> None:
    # a bill run that finds two unbilled periods (say, the worker was down): two invoices, same day
    result = compose([replace(ARIA, billed_until=d("2018-10-15"))], [], d("2018-11-20"), combine=False)
    assert summarize(result.invoices) == [
        (d("2018-11-20"), [(d("2018-10-15"), d("2018-11-14"), 3000)]),
        (d("2018-11-20"), [(d("2018-11-15"), d("2018-12-14"), 3000)]),
    ]
    assert result.hold_until is None


BASIC = terms("2018-10-05", monthly(15), 3000, key="basic", plan="basic", position=0)
ADDON = terms("2018-10-05", monthly(15), 500, key="addon", plan="addon", position=1)
QUARTERLY = terms("2018-10-05", monthly(15, 3), 9000, key="quarterly", plan="quarterly", position=2)


def test_combine_true_with_several_subscriptions_is_one_invoice_in_date_order_then_position() -> None:
    result = compose([QUARTERLY, ADDON, BASIC], [], d("2018-11-30"), combine=True, onboarding=True)
    (invoice,) = result.invoices
    assert [(c.subscription_key, c.period.start, c.amount_minor) for c in invoice.charges] == [
        ("basic", d("2018-10-05"), 1000),  # 30.00 x 10/30
        ("addon", d("2018-10-05"), 167),  # 5.00 x 10/30 = 1.666.. -> 1.67
        ("quarterly", d("2018-10-05"), 978),  # 90.00 x 10/92 (Jul 15..Oct 14 = 92 days) = 9.78
        ("basic", d("2018-10-15"), 3000),
        ("addon", d("2018-10-15"), 500),
        ("quarterly", d("2018-10-15"), 9000),  # Oct 15..Jan 14
        ("basic", d("2018-11-15"), 3000),
        ("addon", d("2018-11-15"), 500),
    ]
    assert invoice.total_minor == 1000 + 167 + 978 + 3000 + 500 + 9000 + 3000 + 500
    ends = {"basic": d("2018-12-15"), "addon": d("2018-12-15"), "quarterly": d("2019-01-15")}
    assert result.billed_until == ends
    assert result.next_bill_dates == ends  # in advance, the next period is due when the last billed one ends


def test_combine_false_groups_the_subscriptions_of_one_period_start() -> None:
    account = Account([BASIC, ADDON, QUARTERLY], combine=False)
    first = account.bill(d("2018-11-30"), onboarding=True)
    # the earliest period group is every subscription's stub: one invoice, three lines
    assert [[(c.subscription_key, c.amount_minor) for c in i.charges] for i in first.invoices] == [
        [("basic", 1000), ("addon", 167), ("quarterly", 978)],
    ]
    second = account.bill(d("2018-12-01"))
    assert [[(c.subscription_key, c.period.start) for c in i.charges] for i in second.invoices] == [
        [("basic", d("2018-10-15")), ("addon", d("2018-10-15")), ("quarterly", d("2018-10-15"))],
        [("basic", d("2018-11-15")), ("addon", d("2018-11-15"))],
    ]


# -- the catch-up bound ----------------------------------------------------------------------------------


def test_the_default_bound_is_36_periods() -> None:
    assert DEFAULT_MAX_CATCH_UP_PERIODS == 36


@pytest.mark.parametrize(
    ("as_of", "periods"),
    [
        ("2017-12-01", 36),  # Jan 2015..Dec 2017: 12 x 3 = 36 periods, at the bound: accepted
        ("2017-11-30", 35),  # Jan 2015..Nov 2017: 35
    ],
)
def test_a_catch_up_at_the_bound_is_accepted(as_of: str, periods: int) -> None:
    start_on_the_first = terms("2015-01-01", monthly(1))
    (invoice,) = compose([start_on_the_first], [], d(as_of), combine=True, onboarding=True).invoices
    assert len(invoice.charges) == periods


def test_a_catch_up_past_the_bound_is_rejected_naming_start_date_and_the_bound() -> None:
    start_on_the_first = terms("2015-01-01", monthly(1))
    with pytest.raises(CatchUpTooLong) as caught:
        compose([start_on_the_first], [], d("2018-01-01"), combine=True, onboarding=True)  # 37 periods
    assert caught.value.field == "start_date"
    assert "36" in caught.value.reason
    assert "max_catch_up_periods" in caught.value.reason
    assert "2015-01-01" in caught.value.reason


@pytest.mark.parametrize("combine", [True, False])
def test_a_configured_bound(combine: bool) -> None:
    weekly = terms("2023-03-01", Cadence(IntervalUnit.WEEK, 1, 1))  # one period per week from Mar 1
    compose([weekly], [], d("2023-03-15"), combine=combine, onboarding=True, max_catch_up=3)  # 3 periods: ok
    with pytest.raises(CatchUpTooLong, match="max_catch_up_periods = 3"):
        compose([weekly], [], d("2023-03-22"), combine=combine, onboarding=True, max_catch_up=3)  # 4 periods


def test_the_bound_only_applies_at_onboarding() -> None:
    # a bill run after a long outage bills what is due: the bound guards absurd backdates, not outages
    billed = replace(terms("2015-01-01", monthly(1)), billed_until=d("2015-02-01"))
    (invoice,) = compose([billed], [], d("2018-06-01"), combine=True).invoices
    assert len(invoice.charges) == 41  # Feb 2015..Jun 2018 = 11 + 12 + 12 + 6


# -- rerunning ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("combine", [True, False])
@pytest.mark.parametrize("timing", [ADVANCE, ARREARS])
def test_a_rerun_with_its_own_output_issues_nothing(combine: bool, timing: Timing) -> None:
    account = Account([replace(ARIA, timing=timing)], combine=combine)
    first = account.bill(d("2018-11-30"), onboarding=True)
    assert first.invoices
    again = account.bill(d("2018-11-30"), onboarding=True)  # the redelivered onboarding
    assert again.invoices == ()
    assert again.billed_until == first.billed_until
    assert again.next_bill_dates == first.next_bill_dates


def test_a_held_account_reports_its_state_unchanged() -> None:
    lines = (credit("c1", 500, 1),)
    held = compose([replace(ARIA, billed_until=d("2018-10-15"))], lines, d("2018-11-30"), combine=False,
                   hold_until=d("2018-12-01"))
    assert held.invoices == ()
    assert held.lapses == ()
    assert held.balance_left == lines
    assert held.hold_until == d("2018-12-01")
    assert held.billed_until == {"sub-1": d("2018-10-15")}
    assert held.next_bill_dates == {"sub-1": d("2018-12-01")}


def test_a_bill_run_with_nothing_due_keeps_the_balance_open() -> None:
    lines = (credit("c1", 500, 1, expires_on="2018-12-01"),)
    result = compose([replace(ARIA, billed_until=d("2018-12-15"))], lines, d("2018-12-05"), combine=True)
    assert result.invoices == ()
    assert result.balance_left == lines  # nothing lapses without an invoice to lapse it on
    assert result.next_bill_dates == {"sub-1": d("2018-12-15")}


# -- balance lines on composed invoices ---------------------------------------------------------------------


def balance_rows(invoice: InvoiceDraft) -> list[tuple[str, int]]:
    return [(m.line_id, m.invoice_amount_minor) for m in invoice.balance]


def test_onboarding_balance_lines_apply_to_the_catch_up_invoice() -> None:
    lines = [
        credit("signup", 2000, 1, "2018-11-30"),
        OpenBalanceLine("first", BalanceKind.DISCOUNT, 2, d("2018-11-30"), percent=None, remaining_minor=500),
    ]
    (invoice,) = compose([ARIA], lines, d("2018-11-30"), combine=True, onboarding=True).invoices
    assert balance_rows(invoice) == [("first", -500), ("signup", -2000)]
    assert (invoice.recurring_minor, invoice.subtotal_minor) == (7000, 7000)
    assert (invoice.discount_minor, invoice.credit_minor) == (500, 2000)
    assert invoice.total_minor == 4500  # 70.00 - 5.00 - 20.00


def test_onboarding_balance_lines_go_to_the_first_invoice_when_not_combined() -> None:
    account = Account([ARIA], combine=False, balance=(credit("signup", 1500, 1, "2018-11-30"),))
    first = account.bill(d("2018-11-30"), onboarding=True)
    assert [i.total_minor for i in first.invoices] == [0]  # 10.00 stub - 10.00 of the 15.00 credit
    second = account.bill(d("2018-12-01"))
    assert [i.total_minor for i in second.invoices] == [2500, 3000]  # 30 - 5 (the rest), then 30
    assert account.balance == ()


def test_a_credit_larger_than_the_invoice_is_carried_forward_to_later_invoices() -> None:
    account = Account([ARIA], combine=True, balance=(credit("big", 10000, 1, "2018-11-30"),))
    account.bill(d("2018-11-30"), onboarding=True)
    assert account.invoices[-1].total_minor == 0  # 70.00 - 70.00
    assert [(line.line_id, line.remaining_minor) for line in account.balance] == [("big", 3000)]  # 100 - 70
    account.bill(d("2018-12-15"))
    assert account.invoices[-1].total_minor == 0  # 30.00 - 30.00
    account.bill(d("2019-01-15"))
    assert account.invoices[-1].total_minor == 3000  # nothing left
    assert account.balance == ()


def test_an_expired_credit_lapses_on_the_first_invoice_after_its_expiry() -> None:
    account = Account(
        [replace(ARIA, billed_until=d("2018-12-15"))],
        combine=True,
        balance=(credit("short", 10000, 1, "2018-11-01", expires_on="2018-12-15"),),
    )
    on_expiry = account.bill(d("2018-12-15"))
    assert balance_rows(on_expiry.invoices[0]) == [("short", -3000)]  # usable on its expires_on day
    after = account.bill(d("2019-01-15"))
    assert balance_rows(after.invoices[0]) == []
    lapses = [(m.line_id, m.movement, m.consumed_minor) for m in after.lapses]
    assert lapses == [("short", MovementKind.LAPSED, 7000)]  # 100.00 - 30.00
    assert after.invoices[0].total_minor == 3000


def test_a_positive_adjustment_raises_the_subtotal_and_a_negative_one_is_a_credit() -> None:
    lines = [
        OpenBalanceLine("late-fee", BalanceKind.ADJUSTMENT, 1, d("2018-12-01"), remaining_minor=1200),
        OpenBalanceLine("goodwill", BalanceKind.ADJUSTMENT, 2, d("2018-12-01"), remaining_minor=-500),
    ]
    december = replace(ARIA, billed_until=d("2018-12-15"))
    (invoice,) = compose([december], lines, d("2018-12-15"), combine=True).invoices
    assert balance_rows(invoice) == [("late-fee", 1200), ("goodwill", -500)]
    assert invoice.recurring_minor == 3000
    assert invoice.subtotal_minor == 4200  # 30.00 + 12.00
    assert invoice.credit_minor == 500
    assert invoice.discount_minor == 0
    assert invoice.total_minor == 3700  # 42.00 - 5.00


def test_a_line_effective_in_the_future_waits_for_a_later_invoice() -> None:
    account = Account([ARIA], combine=True, balance=(credit("later", 500, 1, "2018-12-10"),))
    account.bill(d("2018-11-30"), onboarding=True)
    assert account.invoices[-1].total_minor == 7000  # not applied on Nov 30
    for day in range(1, 15):
        account.bill(date(2018, 12, day))
    assert len(account.invoices) == 1  # a balance line never issues an invoice by itself
    account.bill(d("2018-12-15"))
    assert account.invoices[-1].total_minor == 2500  # applied on the next invoice


def test_a_percent_discount_counts_only_the_recurring_lines_and_rounds_half_up() -> None:
    lines = [
        OpenBalanceLine("fee", BalanceKind.ADJUSTMENT, 1, d("2018-10-01"), remaining_minor=1000),
        OpenBalanceLine("p", BalanceKind.DISCOUNT, 2, d("2018-10-01"), percent=Fraction(15)),
    ]
    subscription = terms("2018-10-05", monthly(15), 3333)
    (invoice,) = compose([subscription], lines, d("2018-10-05"), combine=True).invoices
    # recurring: 33.33 x 10/30 = 11.11; 15% of 11.11 = 1.6665 -> 1.67 (the 10.00 fee is not discounted)
    assert invoice.recurring_minor == 1111
    assert invoice.discount_minor == 167
    assert invoice.total_minor == 1111 + 1000 - 167


def test_charge_lines_carry_plan_and_position() -> None:
    (invoice,) = compose([ADDON], [], d("2018-10-05"), combine=True, onboarding=True).invoices
    (line,) = invoice.charges
    assert (line.subscription_key, line.plan, line.position) == ("addon", "addon", 1)
    assert invoice.issue_date == d("2018-10-05")


def test_next_bill_dates_in_arrears_and_for_a_future_start() -> None:
    future = compose([ARIA], [], d("2018-09-01"), combine=True)
    assert future.next_bill_dates == {"sub-1": d("2018-10-05")}  # the stub, due on its first day
    assert future.billed_until == {}
    arrears = compose([replace(ARIA, timing=ARREARS)], [], d("2018-09-01"), combine=True)
    assert arrears.next_bill_dates == {"sub-1": d("2018-10-15")}  # the stub, due the day after it ends


def test_a_plain_string_timing_is_refused_or_understood() -> None:
    # Expected: the three periods of scenario A (or a refusal). Got: only the two that have ended.
    plain = replace(ARIA, timing="advance")  # type: ignore[arg-type]
    assert [len(i.charges) for i in compose([plain], [], d("2018-11-30"), combine=True).invoices] == [3]
