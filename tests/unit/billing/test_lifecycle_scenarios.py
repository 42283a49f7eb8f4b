"""The four lifecycle acceptance scenarios and DESIGN §2b's examples, with the arithmetic written out.

Each scenario drives the pure core day by day as the shell would: a message handler updates the
stored terms (timeline, schedule) and, where §2b says so, composes at once; the hourly bill run
composes once per local date. Lines print as (kind, plan, first day, last day, days, period_days,
amount in minor units).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from models.billing.composition import SubscriptionTerms, compose
from models.billing.rating import BilledRange, LineKind
from models.billing.schedule import Schedule
from models.billing.timeline import PriceTimeline
from tests.unit.billing.helpers import d, monthly, terms
from tests.unit.billing.lifecycle_helpers import Event, LifecycleAccount, printed_invoices, run_days

R, P = "recurring", "proration"


def change(key: str, effective: str, plan: str, amount: int) -> Event:
    def event(account: LifecycleAccount, day: date) -> None:
        account.update(key, lambda t: replace(t, timeline=t.price_timeline.changed(d(effective), plan, amount)))
    return event


def test_upgrade_mid_period_is_corrected_on_the_next_invoice() -> None:
    """30.00 -> 60.00 (basic -> pro) on 2024-01-11, bill day 1: 21 of January's 31 days re-rated.

    On 1 Feb: recurring pro 60.00 (1-29 Feb, a whole period at a constant price is the price);
    proration basic -30.00 x 21/31 = -20.3225... -> -20.32; proration pro +60.00 x 21/31 =
    +40.6451... -> +40.65. Total 60.00 - 20.32 + 40.65 = 80.33.
    """
    account = LifecycleAccount({"basic": terms("2024-01-01", monthly(1), 3000, key="basic", plan="basic")}, True)
    run_days(account, d("2024-01-01"), d("2024-02-02"), {d("2024-01-11"): [change("basic", "2024-01-11", "pro", 6000)]})
    assert printed_invoices(account.invoices) == [
        (d("2024-01-01"), 3000, [(R, "basic", d("2024-01-01"), d("2024-01-31"), 31, 31, 3000)]),
        (d("2024-02-01"), 8033, [
            (R, "pro", d("2024-02-01"), d("2024-02-29"), 29, 29, 6000),
            (P, "basic", d("2024-01-11"), d("2024-01-31"), 21, 31, -2032),
            (P, "pro", d("2024-01-11"), d("2024-01-31"), 21, 31, 4065),
        ]),
    ]
    # a rerun on the same day, with those lines stored, finds nothing: corrections are idempotent
    assert account.bill(d("2024-02-02")).invoices == ()


def test_upgrade_with_invoice_now_issues_the_corrections_at_once() -> None:
    """The same upgrade with ``invoice_now``: the two proration lines on 11 Jan, +20.33 net."""
    account = LifecycleAccount({"basic": terms("2024-01-01", monthly(1), 3000, key="basic", plan="basic")}, True)
    account.bill(d("2024-01-01"), onboarding=True)
    change("basic", "2024-01-11", "pro", 6000)(account, d("2024-01-11"))
    result = account.bill(d("2024-01-11"), invoice_now=True)
    assert printed_invoices(result.invoices) == [(d("2024-01-11"), 2033, [
        (P, "basic", d("2024-01-11"), d("2024-01-31"), 21, 31, -2032),
        (P, "pro", d("2024-01-11"), d("2024-01-31"), 21, 31, 4065),
    ])]
    assert result.corrections_pending == frozenset()
    assert account.bill(d("2024-02-01")).invoices[0].total_minor == 6000  # February alone, at pro


def test_cancel_now_is_settled_at_once_and_its_credit_pays_the_next_invoices() -> None:
    """Paris, bill day 15: seat 31.00 and support 10.00 billed 15 Mar - 14 Apr (31 days).

    seat cancelled on 25 Mar (local): 25 Mar - 14 Apr = 21 days unused: -31.00 x 21/31 = -21.00,
    settled at once on a 0.00 invoice; the 21.00 becomes system credit. 15 Apr: support 10.00
    (30 days) - credit 10.00 = 0.00; 15 May: 10.00 - 10.00 = 0.00; 1.00 of credit left.
    """
    seat = terms("2024-03-15", monthly(15), 3100, key="seat", plan="seat")
    support = terms("2024-03-15", monthly(15), 1000, key="support", plan="support", position=1)
    account = LifecycleAccount({"seat": seat, "support": support}, True)

    def cancel(account: LifecycleAccount, day: date) -> None:
        account.update("seat", lambda t: replace(t, timeline=t.price_timeline.ended(day)))
        account.bill(day)  # the handler composes at once: a cancellation with proration settles now

    run_days(account, d("2024-03-15"), d("2024-05-16"), {d("2024-03-25"): [cancel]})
    invoices = account.invoices
    assert printed_invoices(invoices) == [
        (d("2024-03-15"), 4100, [(R, "seat", d("2024-03-15"), d("2024-04-14"), 31, 31, 3100),
                                 (R, "support", d("2024-03-15"), d("2024-04-14"), 31, 31, 1000)]),
        (d("2024-03-25"), 0, [(P, "seat", d("2024-03-25"), d("2024-04-14"), 21, 31, -2100)]),
        (d("2024-04-15"), 0, [(R, "support", d("2024-04-15"), d("2024-05-14"), 30, 30, 1000)]),
        (d("2024-05-15"), 0, [(R, "support", d("2024-05-15"), d("2024-06-14"), 31, 31, 1000)]),
    ]
    assert invoices[1].system_credit_minor == 2100 and invoices[1].balance == ()
    assert [m.invoice_amount_minor for m in invoices[2].balance] == [-1000]
    assert [m.invoice_amount_minor for m in invoices[3].balance] == [-1000]
    assert account.credit_left == 100
    assert "seat" in account.history[-1].finished and "seat" not in account.history[-1].next_bill_dates


def test_bill_day_15_to_1_bridges_to_the_new_anchor() -> None:
    """Bill day 15 -> 1 on 2018-11-20; 15 Nov - 14 Dec is billed and stands (S = 15 Dec).

    Bridge 15-31 Dec (17 days) inside the B' = 1 cycle 1-31 Dec (31 days): 30.00 x 17/31 =
    16.4516... -> 16.45, due 15 Dec; then 1 Jan 30.00 for January.
    """
    sub = terms("2018-11-15", monthly(15), 3000, key="m", plan="monthly")
    account = LifecycleAccount({"m": sub}, True)

    def update_bill_day(account: LifecycleAccount, day: date) -> None:
        account.update("m", lambda t: replace(t, schedule=t.period_schedule.with_bill_day(1, day)))

    run_days(account, d("2018-11-15"), d("2019-01-02"), {d("2018-11-20"): [update_bill_day]})
    assert printed_invoices(account.invoices) == [
        (d("2018-11-15"), 3000, [(R, "monthly", d("2018-11-15"), d("2018-12-14"), 30, 30, 3000)]),
        (d("2018-12-15"), 1645, [(R, "monthly", d("2018-12-15"), d("2018-12-31"), 17, 31, 1645)]),
        (d("2019-01-01"), 3000, [(R, "monthly", d("2019-01-01"), d("2019-01-31"), 31, 31, 3000)]),
    ]


def test_backdated_add_in_separate_mode_catches_up_for_that_subscription_alone() -> None:
    """Bill day 1, separate invoices; on 10 Jun an add-on backdated to 20 May (9.00 a month).

    Its stub 20-31 May (12 days) in the cycle 1-31 May (31 days): 9.00 x 12/31 = 3.4838... -> 3.48,
    invoiced on 10 Jun; June's 9.00 by the next day's bill run; base's own invoices are untouched.
    """
    base = terms("2024-05-01", monthly(1), 2000, key="base", plan="base")
    account = LifecycleAccount({"base": base}, False)

    def add(account: LifecycleAccount, day: date) -> None:
        account.add(terms("2024-05-20", monthly(1), 900, key="addon", plan="addon", position=1))
        account.bill(day, catching_up=frozenset({"addon"}))

    run_days(account, d("2024-05-01"), d("2024-06-12"), {d("2024-06-10"): [add]})
    assert printed_invoices(account.invoices) == [
        (d("2024-05-01"), 2000, [(R, "base", d("2024-05-01"), d("2024-05-31"), 31, 31, 2000)]),
        (d("2024-06-01"), 2000, [(R, "base", d("2024-06-01"), d("2024-06-30"), 30, 30, 2000)]),
        (d("2024-06-10"), 348, [(R, "addon", d("2024-05-20"), d("2024-05-31"), 12, 31, 348)]),
        (d("2024-06-11"), 900, [(R, "addon", d("2024-06-01"), d("2024-06-30"), 30, 30, 900)]),
    ]


def test_backdated_add_on_a_bill_day_does_not_hold_the_other_subscriptions() -> None:
    """Added on 1 Jun (a bill day) from 20 May, separate: base's June and the add-on's stub are issued
    on 1 Jun; only the add-on's own June waits for 2 Jun."""
    base = terms("2024-05-01", monthly(1), 2000, key="base", plan="base", billed_until=d("2024-06-01"))
    addon = terms("2024-05-20", monthly(1), 900, key="addon", plan="addon", position=1)
    result = compose([base, replace(addon, catching_up=True)], [], d("2024-06-01"), combine=False)
    assert printed_invoices(result.invoices) == [
        (d("2024-06-01"), 348, [(R, "addon", d("2024-05-20"), d("2024-05-31"), 12, 31, 348)]),
        (d("2024-06-01"), 2000, [(R, "base", d("2024-06-01"), d("2024-06-30"), 30, 30, 2000)]),
    ]
    assert result.hold_until == d("2024-06-02")
    assert result.billed_until == {"base": d("2024-07-01"), "addon": d("2024-06-01")}


def test_design_worked_example_as_pure_corrections() -> None:
    """DESIGN §2b's worked example, straight from stored lines: billed 30.00 for January (basic)."""
    billed = (BilledRange(d("2024-01-01"), d("2024-02-01"), 31, d("2024-01-01"), d("2024-02-01"), "basic", 3000),)
    timeline = PriceTimeline(d("2024-01-01"), "basic", 3000).changed(d("2024-01-11"), "pro", 6000)
    sub = SubscriptionTerms("s", "basic", 3000, monthly(1), d("2024-01-01"), billed_until=d("2024-02-01"),
                            timeline=timeline, billed=billed)
    result = compose([sub], [], d("2024-02-01"), combine=True)
    (invoice,) = result.invoices
    assert [(c.kind, c.plan, c.rate_minor, c.amount_minor) for c in invoice.charges] == [
        (LineKind.RECURRING, "pro", 6000, 6000),
        (LineKind.PRORATION, "basic", -3000, -2032),  # 30 x 21/31 = 20.322...
        (LineKind.PRORATION, "pro", 6000, 4065),  # 60 x 21/31 = 40.645...
    ]
    assert invoice.total_minor == 8033


def test_design_bill_day_example_through_the_schedule() -> None:
    """DESIGN §2b: bill day 15 -> 1 on 2018-11-20 gives the bridge [15 Dec, 1 Jan) in the cycle [1 Dec, 1 Jan)."""
    schedule = Schedule.single(d("2018-11-15"), monthly(15)).with_bill_day(1, d("2018-11-20"))
    periods = list(zip(range(3), schedule.periods(), strict=False))
    assert [(p.start, p.end, p.cycle_start) for _, p in periods] == [
        (d("2018-11-15"), d("2018-12-15"), d("2018-11-15")),
        (d("2018-12-15"), d("2019-01-01"), d("2018-12-01")),  # 17 of 31 days
        (d("2019-01-01"), d("2019-02-01"), d("2019-01-01")),
    ]
