"""The lifecycle rules one by one: timeline validation, schedule helpers, range lines, balance on
invoices with proration lines, and the generator's settlement dates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction

import pytest

from models.billing.balance import BalanceKind, MovementKind, OpenBalanceLine, apply_balance
from models.billing.calendar import Cadence, IntervalUnit
from models.billing.composition import SubscriptionTerms, Timing, compose
from models.billing.errors import BillingError, InvalidChange
from models.billing.proration import Proration
from models.billing.rating import BilledRange, corrections, range_lines
from models.billing.schedule import Schedule
from models.billing.timeline import Cancellation, Pause, PriceChange, PriceTimeline, RangeStatus, Resume
from tests.unit.billing.helpers import credit, d, monthly, period, terms

JAN = d("2024-01-01")
BASE = PriceTimeline(JAN, "basic", 3000)


# -- the timeline ----------------------------------------------------------------------------------------


def test_changes_apply_by_effective_date_then_arrival() -> None:
    timeline = BASE.changed(d("2024-02-01"), "pro", 6000).changed(d("2024-01-15"), "mid", 4500)
    timeline = timeline.changed(d("2024-02-01"), "max", 9000)  # same day, later arrival: wins
    assert [(r.start, r.end, r.plan, r.amount_minor) for r in timeline.ranges(JAN, d("2024-03-01"))] == [
        (JAN, d("2024-01-15"), "basic", 3000),
        (d("2024-01-15"), d("2024-02-01"), "mid", 4500),
        (d("2024-02-01"), d("2024-03-01"), "max", 9000),
    ]


def test_pause_resume_and_end_shape_the_ranges() -> None:
    timeline = BASE.paused(d("2024-01-10")).resumed(d("2024-01-20")).ended(d("2024-01-25"))
    assert [(r.start, r.end, r.amount_minor, r.status) for r in timeline.ranges(JAN, d("2024-02-01"))] == [
        (JAN, d("2024-01-10"), 3000, RangeStatus.ACTIVE),
        (d("2024-01-10"), d("2024-01-20"), 0, RangeStatus.PAUSED),
        (d("2024-01-20"), d("2024-01-25"), 3000, RangeStatus.ACTIVE),
        (d("2024-01-25"), d("2024-02-01"), 0, RangeStatus.ENDED),
    ]
    assert timeline.list_price_on(d("2024-01-12")) == ("basic", 3000)
    assert timeline.price_on(d("2024-01-12")).amount_minor == 0


def test_replay_rebuilds_the_same_timeline_from_stored_messages() -> None:
    events = [PriceChange(d("2024-01-11"), "pro", 6000), Pause(d("2024-02-01")), Resume(d("2024-02-10")),
              Cancellation(d("2024-03-01"))]
    expected = BASE.changed(d("2024-01-11"), "pro", 6000).paused(d("2024-02-01")).resumed(d("2024-02-10"))
    assert PriceTimeline.replay(JAN, "basic", 3000, events) == expected.ended(d("2024-03-01"))


def test_a_later_cancel_cuts_a_scheduled_change() -> None:
    timeline = BASE.changed(d("2024-03-01"), "pro", 6000).ended(d("2024-02-15"))
    assert timeline.ranges(d("2024-02-14"), d("2024-03-02"))[-1].status is RangeStatus.ENDED


@pytest.mark.parametrize(
    ("build", "field", "words"),
    [
        (lambda: BASE.changed(d("2023-12-31"), "pro", 6000), "effective_date", "before the subscription's start"),
        (lambda: BASE.ended(d("2024-02-01")).changed(d("2024-02-01"), "pro", 1), "effective_date", "end"),
        (lambda: BASE.changed(d("2024-02-01"), "pro", -1), "amount", "negative"),
        (lambda: BASE.changed(d("2024-02-01"), "pro", 2**63), "amount", "64-bit"),
        (lambda: BASE.resumed(d("2024-02-01")), "subscription", "no open pause"),
        (lambda: BASE.paused(d("2024-02-10")).resumed(d("2024-02-01")), "effective_date", "before the pause"),
        (lambda: BASE.paused(d("2024-02-10")).paused(d("2024-03-01")), "from", "already paused"),
        (lambda: BASE.paused(d("2024-02-10"), d("2024-02-10")), "until", "not after"),
        (lambda: BASE.ended(d("2024-02-01")).ended(d("2024-03-01")), "effective_date", "after the subscription's end"),
        (lambda: BASE.ended(d("2023-12-01")), "effective_date", "before the subscription's start"),
        (lambda: BASE.ended(d("2024-02-01")).resumed(d("2024-02-05")), "subscription", "no open pause"),
    ],
)
def test_invalid_lifecycle_messages_name_their_field(
    build: Callable[[], PriceTimeline], field: str, words: str
) -> None:
    with pytest.raises(InvalidChange) as raised:
        build()
    assert raised.value.field == field and words in raised.value.reason
    assert raised.value.code == "invalid"


def test_a_resume_on_the_pause_day_leaves_no_pause() -> None:
    assert BASE.paused(d("2024-02-10")).resumed(d("2024-02-10")).pauses == ()


# -- the schedule ------------------------------------------------------------------------------------------


def test_bill_day_change_before_the_start_keeps_the_first_period() -> None:
    schedule = Schedule.single(d("2024-03-10"), monthly(10)).with_bill_day(1, d("2024-02-01"))
    assert [s.start for s in schedule.segments] == [d("2024-03-10"), d("2024-04-10")]


def test_week_schedules_and_unchanged_bill_days_are_unaffected() -> None:
    weekly = Schedule.single(JAN, Cadence(IntervalUnit.WEEK, 1, 1))
    assert weekly.with_bill_day(15, d("2024-01-20")) is weekly
    same = Schedule.single(JAN, monthly(1))
    assert same.with_bill_day(1, d("2024-01-20")) is same


def test_a_second_bill_day_change_replaces_a_planned_one() -> None:
    schedule = Schedule.single(d("2018-11-15"), monthly(15)).with_bill_day(1, d("2018-11-20"))
    schedule = schedule.with_bill_day(20, d("2018-11-25"))  # still in 15 Nov - 14 Dec: S is 15 Dec again
    assert [(s.start, s.cadence.bill_day) for s in schedule.segments] == [(d("2018-11-15"), 15), (d("2018-12-15"), 20)]


def test_quarterly_bridge_is_charged_over_the_new_quarter_that_contains_it() -> None:
    """Quarterly, bill day 15 -> 1 on 20 Nov: current quarter 15 Sep - 14 Dec stands; bridge 15-31 Dec
    inside the B'=1 quarter 1 Oct - 31 Dec (92 days): 90.00 x 17/92 = 16.63."""
    schedule = Schedule.single(d("2018-09-15"), monthly(15, 3)).with_bill_day(1, d("2018-11-20"))
    sub = SubscriptionTerms("q", "q", 9000, monthly(15, 3), d("2018-09-15"), billed_until=d("2018-12-15"),
                            schedule=schedule)
    (invoice,) = compose([sub], [], d("2018-12-15"), combine=True).invoices
    (line,) = invoice.charges
    assert (line.start, line.last_day, line.days, line.period_days, line.amount_minor) == (
        d("2018-12-15"), d("2018-12-31"), 17, 92, 1663)


def test_next_boundary_is_where_proration_none_moves_an_effective_date() -> None:
    schedule = Schedule.single(JAN, monthly(1))
    assert schedule.next_boundary(d("2024-01-11")) == d("2024-02-01")
    assert schedule.next_boundary(d("2024-02-01")) == d("2024-02-01")


def test_a_backdated_change_is_bounded_like_a_catch_up() -> None:
    schedule = Schedule.single(d("2020-01-01"), monthly(1))
    schedule.check_backdate(d("2021-01-15"), d("2023-12-20"), 36)  # Jan 2021 .. Dec 2023: 36 periods
    with pytest.raises(BillingError) as raised:
        schedule.check_backdate(d("2020-12-31"), d("2023-12-20"), 36)  # 37
    assert raised.value.field == "effective_date" and "max_catch_up_periods = 36" in raised.value.reason


# -- range lines and corrections --------------------------------------------------------------------------


def test_a_period_known_to_change_is_billed_per_range() -> None:
    """In advance, a change known before 1 Feb: 1-14 Feb 30.00 x 14/29 = 14.48, 15-29 Feb 60.00 x 15/29 = 31.03."""
    timeline = BASE.changed(d("2024-02-15"), "pro", 6000)
    lines = range_lines("s", period("2024-02-01", "2024-03-01"), timeline, Proration.DAILY)
    assert [(c.plan, c.start, c.days, c.period_days, c.amount_minor) for c in lines] == [
        ("basic", d("2024-02-01"), 14, 29, 1448), ("pro", d("2024-02-15"), 15, 29, 3103)]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # stub 5-14 Oct 2018 in the cycle 15 Sep - 14 Oct (30 days), 30.00 -> 60.00 from 10 Oct
        (Proration.DAILY, [1000, -500, 1000]),  # 30 x 10/30; -30 x 5/30; +60 x 5/30
        (Proration.FULL, [3000, -1500, 3000]),  # the stub counts as a whole period: 5 of its 10 days
        (Proration.NONE, [0]),  # a free stub is never corrected
    ],
)
def test_stub_policies_with_a_change_inside_the_stub(policy: Proration, expected: list[int]) -> None:
    stub = period("2018-10-05", "2018-10-15", "2018-09-15")
    start = d("2018-10-05")
    billed = range_lines("s", stub, PriceTimeline(start, "p", 3000), policy)
    fixes = corrections("s", stub, [c.billed_range() for c in billed],
                        PriceTimeline(start, "p", 3000).changed(d("2018-10-10"), "p2", 6000), policy)
    assert [c.amount_minor for c in [*billed, *fixes]] == expected


def test_a_pause_and_a_cancel_in_one_billed_period_credit_each_range_once() -> None:
    """January billed 31.00; pause 6-10 Jan (5 days), cancel from 21 Jan (11 days): -5.00 and -11.00."""
    jan = period("2024-01-01", "2024-02-01")
    billed = [BilledRange(JAN, d("2024-02-01"), 31, JAN, d("2024-02-01"), "basic", 3100)]
    timeline = PriceTimeline(JAN, "basic", 3100).paused(d("2024-01-06"), d("2024-01-11")).ended(d("2024-01-21"))
    fixes = corrections("s", jan, billed, timeline, Proration.DAILY)
    assert [(c.start, c.days, c.rate_minor, c.amount_minor) for c in fixes] == [
        (d("2024-01-06"), 5, -3100, -500), (d("2024-01-21"), 11, -3100, -1100)]


def test_a_billed_range_outside_its_period_is_refused() -> None:
    jan = period("2024-01-01", "2024-02-01")
    bad = BilledRange(JAN, d("2024-02-01"), 31, d("2023-12-25"), d("2024-01-05"), "basic", 3000)
    with pytest.raises(BillingError) as raised:
        corrections("s", jan, [bad], BASE, Proration.DAILY)
    assert raised.value.field == "billed"


# -- balance on invoices with proration lines -------------------------------------------------------------


def fixed(line_id: str, amount: int, sequence: int) -> OpenBalanceLine:
    return OpenBalanceLine(line_id, BalanceKind.DISCOUNT, sequence, d("2000-01-01"), amount)


def test_discounts_apply_to_recurring_lines_and_credits_to_what_is_due_after_proration() -> None:
    """recurring 60.00, proration -20.32 + 40.65; 10% of 60.00 = 6.00 off; credit pays 74.33 of 100."""
    percent = OpenBalanceLine("p", BalanceKind.DISCOUNT, 1, d("2000-01-01"), percent=Fraction(10))
    outcome = apply_balance(6000, [percent, credit("c", 10000, 2)], JAN, proration_minor=2033)
    assert [(m.line_id, m.invoice_amount_minor) for m in outcome.applied] == [("p", -600), ("c", -7433)]


def test_a_negative_proration_caps_the_discount_so_it_never_becomes_credit() -> None:
    """recurring 10.00, proration -8.00: a fixed 5.00 discount can take only 2.00; the rest lapses."""
    outcome = apply_balance(1000, [fixed("f", 500, 1)], JAN, proration_minor=-800)
    assert [(m.movement, m.invoice_amount_minor, m.consumed_minor) for m in outcome.movements] == [
        (MovementKind.APPLIED, -200, 200), (MovementKind.LAPSED, 0, 300)]


def test_an_invoice_without_recurring_lines_leaves_discounts_for_a_later_one() -> None:
    sub = terms("2024-01-01", monthly(1), 3000, key="s", plan="basic", billed_until=d("2024-02-01"))
    billed = (BilledRange(JAN, d("2024-02-01"), 31, JAN, d("2024-02-01"), "basic", 3000),)
    sub = replace(sub, timeline=BASE.changed(d("2024-01-11"), "pro", 6000), billed=billed)
    result = compose([sub], [fixed("f", 500, 1), credit("c", 1000, 2)], d("2024-01-11"), combine=True,
                     invoice_now=True)
    (invoice,) = result.invoices
    assert invoice.proration_minor == 2033 and invoice.recurring_minor == 0
    assert [(m.line_id, m.invoice_amount_minor) for m in invoice.balance] == [("c", -1000)]
    assert invoice.total_minor == 1033
    assert [line.line_id for line in result.balance_left] == ["f"]


def test_a_negative_invoice_applies_no_balance_line_and_reports_system_credit() -> None:
    sub = terms("2024-01-01", monthly(1), 3100, key="s", plan="basic", billed_until=d("2024-02-01"))
    billed = (BilledRange(JAN, d("2024-02-01"), 31, JAN, d("2024-02-01"), "basic", 3100),)
    sub = replace(sub, timeline=PriceTimeline(JAN, "basic", 3100).ended(d("2024-01-11")), billed=billed)
    result = compose([sub], [credit("c", 1000, 1)], d("2024-01-11"), combine=True)
    (invoice,) = result.invoices
    assert (invoice.lines_minor, invoice.total_minor, invoice.system_credit_minor, invoice.balance) == (
        -2100, 0, 2100, ())
    assert result.system_credit_minor == 2100 and [b.line_id for b in result.balance_left] == ["c"]
    assert result.finished == {"s"}


# -- the generator ---------------------------------------------------------------------------------------


def test_corrections_wait_for_the_next_invoice_of_their_subscription() -> None:
    """A weekly add-on bills on 15 Jan; the monthly plan's correction waits for its own 1 Feb invoice."""
    monthly_sub = terms("2024-01-01", monthly(1), 3000, key="m", plan="basic", billed_until=d("2024-02-01"))
    billed = (BilledRange(JAN, d("2024-02-01"), 31, JAN, d("2024-02-01"), "basic", 3000),)
    monthly_sub = replace(monthly_sub, timeline=BASE.changed(d("2024-01-11"), "pro", 6000), billed=billed)
    weekly = SubscriptionTerms("w", "w", 500, Cadence(IntervalUnit.WEEK, 1, 1, bill_weekday=1), JAN,
                               billed_until=d("2024-01-15"), position=1)
    result = compose([monthly_sub, weekly], [], d("2024-01-15"), combine=True)
    (invoice,) = result.invoices
    assert [c.subscription_key for c in invoice.charges] == ["w"]
    assert result.corrections_pending == {"m"} and result.next_bill_dates["m"] == d("2024-02-01")


def test_settle_on_issues_pending_corrections_on_that_day() -> None:
    sub = terms("2024-01-01", monthly(1), 3000, key="s", plan="basic", billed_until=d("2024-02-01"))
    billed = (BilledRange(JAN, d("2024-02-01"), 31, JAN, d("2024-02-01"), "basic", 3000),)
    sub = replace(sub, timeline=BASE.changed(d("2024-01-11"), "pro", 6000), billed=billed, settle_on=d("2024-01-12"))
    early = compose([sub], [], d("2024-01-11"), combine=True)
    assert early.invoices == () and early.next_bill_dates == {"s": d("2024-01-12")}
    assert compose([sub], [], d("2024-01-12"), combine=True).invoices[0].proration_minor == 2033


def test_arrears_final_period_is_due_on_the_end() -> None:
    """In arrears, cancelled from 21 Jan: 1-20 Jan (20/31 of 31.00 = 20.00) is due on 21 Jan, not 1 Feb."""
    sub = terms("2024-01-01", monthly(1), 3100, key="s", timing=Timing.ARREARS)
    sub = replace(sub, timeline=PriceTimeline(JAN, "pro-monthly", 3100).ended(d("2024-01-21")))
    assert compose([sub], [], d("2024-01-20"), combine=True).next_bill_dates == {"s": d("2024-01-21")}
    result = compose([sub], [], d("2024-01-21"), combine=True)
    assert [(c.start, c.days, c.amount_minor) for c in result.invoices[0].charges] == [(JAN, 20, 2000)]
    assert result.finished == {"s"}


def test_nothing_is_billed_from_the_end_on() -> None:
    sub = replace(terms("2024-01-01", monthly(1), 3000, key="s", billed_until=d("2024-02-01")),
                  timeline=PriceTimeline(JAN, "pro-monthly", 3000).ended(d("2024-02-01")))
    result = compose([sub], [], d("2024-03-05"), combine=True)
    assert result.invoices == () and result.finished == {"s"} and result.next_bill_dates == {}


def test_a_billed_period_after_the_watermark_is_refused() -> None:
    billed = (BilledRange(d("2024-02-01"), d("2024-03-01"), 29, d("2024-02-01"), d("2024-03-01"), "basic", 3000),)
    sub = replace(terms("2024-01-01", monthly(1), 3000, key="s", billed_until=d("2024-02-01")), billed=billed)
    with pytest.raises(BillingError) as raised:
        compose([sub], [], d("2024-01-20"), combine=True)
    assert raised.value.field == "billed"


def test_a_timeline_that_does_not_start_on_the_start_date_is_refused() -> None:
    with pytest.raises(BillingError) as raised:
        replace(terms("2024-01-01", monthly(1)), timeline=PriceTimeline(d("2024-01-02"), "p", 1))
    assert raised.value.field == "timeline"


def test_a_period_billed_at_nothing_is_rechecked_too() -> None:
    """Paused all of March (no line stored), resumed on 11 Mar: +30 x 21/31 = 20.32 on April's invoice.

    ``recheck_from`` names the billed periods to compare; one without any stored line was billed at
    nothing, and the resumed days are charged once.
    """
    timeline = PriceTimeline(d("2024-01-01"), "pro-monthly", 3000, pauses=(Pause(d("2024-03-01"), d("2024-03-11")),))
    base = terms("2024-01-01", monthly(1), billed_until=d("2024-04-01"))
    march_paused = replace(base, timeline=timeline, recheck_from=d("2024-03-11"))
    composition = compose([march_paused], [], d("2024-04-01"), combine=True)
    [invoice] = composition.invoices
    assert [(line.kind, line.start, line.amount_minor) for line in invoice.charges] == [
        ("recurring", d("2024-04-01"), 3000), ("proration", d("2024-03-11"), 2032)]
    assert composition.corrections_pending == frozenset()
