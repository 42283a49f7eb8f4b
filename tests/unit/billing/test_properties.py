"""Properties of the billing core, checked on random calendars, subscriptions and balances (hypothesis)."""

from __future__ import annotations

import calendar as stdlib_calendar
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from itertools import islice, pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from models.billing.balance import BalanceKind, MovementKind, OpenBalanceLine, apply_balance
from models.billing.calendar import BillingPeriod, Cadence, IntervalUnit
from models.billing.composition import SubscriptionTerms, Timing
from models.billing.money import format_amount, parse_amount, round_half_up
from models.billing.proration import Proration, charge
from tests.unit.billing.helpers import Account, run_daily

MONTH, YEAR, WEEK = IntervalUnit.MONTH, IntervalUnit.YEAR, IntervalUnit.WEEK
PROPERTY = settings(max_examples=100, deadline=None)
HEAVY = settings(max_examples=200, deadline=None)

starts = st.dates(min_value=date(1999, 1, 1), max_value=date(2040, 12, 31))


@st.composite
def cadences(draw: st.DrawFn, *, any_count: bool = False) -> Cadence:
    """Any valid cadence; ``any_count`` draws any month count when no bill_month is set (a bill_month
    needs a count that divides 12 or spans whole years)."""
    unit = draw(st.sampled_from([MONTH, YEAR, WEEK]))
    bill_day = draw(st.integers(1, 31))
    if unit is WEEK:
        weekday = draw(st.none() | st.integers(1, 7))
        return Cadence(WEEK, draw(st.integers(1, 4)), bill_day, bill_weekday=weekday)
    bill_month = draw(st.none() | st.integers(1, 12))
    if unit is YEAR:
        count = draw(st.integers(1, 3))
    elif bill_month is None:
        count = draw(st.integers(1, 24 if any_count else 12))
    else:
        count = draw(st.sampled_from([1, 2, 3, 4, 6, 12, 24]))
    return Cadence(unit, count, bill_day, bill_month=bill_month)


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def expected_anchor(index: int, bill_day: int) -> date:
    """The anchor of a month, computed here independently of the core: day B or the month's last day."""
    year, month0 = divmod(index, 12)
    return date(year, month0 + 1, min(bill_day, stdlib_calendar.monthrange(year, month0 + 1)[1]))


# -- the calendar ----------------------------------------------------------------------------------------


@PROPERTY
@given(cadence=cadences(any_count=True), start=starts)
def test_periods_tile_time_without_gap_or_overlap(cadence: Cadence, start: date) -> None:
    periods = list(islice(cadence.periods(start), 40))
    assert periods[0].start == start
    for previous, following in pairwise(periods):
        assert following.start == previous.end
    assert all(p.days > 0 for p in periods)
    assert all(not p.is_stub for p in periods[1:])


@PROPERTY
@given(cadence=cadences(), start=starts)
def test_month_anchors_are_derived_from_the_bill_day_and_never_drift(cadence: Cadence, start: date) -> None:
    if cadence.unit is WEEK:
        return
    first = cadence.first_anchor(start)
    anchors = [p.start for p in islice(cadence.periods(first), 120)]
    for k, anchor in enumerate(anchors):
        # anchor k = date(y, m, min(B, days in m)) for the month k cycles after the first, however far
        assert anchor == expected_anchor(month_index(first) + k * cadence.months, cadence.bill_day)
    if cadence.bill_month is not None:
        assert all((a.month - cadence.bill_month) % min(cadence.months, 12) == 0 for a in anchors)


@PROPERTY
@given(cadence=cadences(), start=starts)
def test_the_first_anchor_is_the_first_one_on_or_after_the_start(cadence: Cadence, start: date) -> None:
    first = cadence.first_anchor(start)
    assert first >= start
    if cadence.unit is WEEK:
        assert first - start < timedelta(days=7)
        assert first.isoweekday() == (cadence.bill_weekday or start.isoweekday())
        return
    assert first == expected_anchor(month_index(first), cadence.bill_day)
    step = 1 if cadence.bill_month is None else min(cadence.months, 12)
    assert expected_anchor(month_index(first) - step, cadence.bill_day) < start  # the one before is too early


@PROPERTY
@given(cadence=cadences(), start=starts)
def test_week_anchors_fall_on_the_bill_weekday_every_n_weeks(cadence: Cadence, start: date) -> None:
    if cadence.unit is not WEEK:
        return
    periods = list(islice(cadence.periods(start), 30))
    weekday = cadence.bill_weekday or start.isoweekday()
    assert all(p.start.isoweekday() == weekday for p in periods[1:])
    assert all(p.days == 7 * cadence.count for p in periods[1:])


@PROPERTY
@given(cadence=cadences(any_count=True), start=starts, k=st.integers(0, 24))
def test_resume_at_a_period_start_yields_the_tail(cadence: Cadence, start: date, k: int) -> None:
    full = list(islice(cadence.periods(start), k + 12))
    tail = list(islice(cadence.periods(start, resume_at=full[k].start), 12))
    assert tail == full[k:]


@PROPERTY
@given(cadence=cadences(), start=starts)
def test_a_stub_is_shorter_than_its_cycle_ending_at_the_first_anchor(cadence: Cadence, start: date) -> None:
    first_period = next(iter(cadence.periods(start)))
    first_anchor = cadence.first_anchor(start)
    if start == first_anchor:
        assert not first_period.is_stub
        return
    assert first_period.is_stub
    assert first_period.end == first_anchor
    assert first_period.cycle_start == cadence.shift(first_anchor, -1)
    assert first_period.cycle_start < first_period.start
    assert 0 < first_period.days < first_period.cycle_days


# -- money and proration -----------------------------------------------------------------------------------


@PROPERTY
@given(numerator=st.integers(-(10**15), 10**15), denominator=st.integers(1, 10**6))
def test_round_half_up_is_within_half_a_unit_ties_away_from_zero(numerator: int, denominator: int) -> None:
    value = Fraction(numerator, denominator)
    rounded = round_half_up(value)
    assert abs(rounded - value) <= Fraction(1, 2)
    if abs(rounded - value) == Fraction(1, 2):
        assert abs(rounded) > abs(value)
    assert round_half_up(-value) == -rounded


@PROPERTY
@given(minor=st.integers(-(2**63 - 1), 2**63 - 1), currency=st.sampled_from(["JPY", "USD", "KWD", "CLF"]))
def test_format_then_parse_is_the_identity(minor: int, currency: str) -> None:
    assert parse_amount(format_amount(minor, currency), currency) == minor


@PROPERTY
@given(amount=st.integers(0, 10**9), cadence=cadences(), start=starts, policy=st.sampled_from(Proration))
def test_a_stub_costs_between_nothing_and_the_price_rounded_once(
    amount: int, cadence: Cadence, start: date, policy: Proration
) -> None:
    first_period = next(iter(cadence.periods(start)))
    cost = charge(amount, first_period, policy)
    assert 0 <= cost <= amount
    if first_period.is_stub and policy is Proration.DAILY:
        exact = Fraction(amount * first_period.days, first_period.cycle_days)
        assert abs(cost - exact) <= Fraction(1, 2)


# -- composition ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """An account: subscriptions sharing a start date and a bill day, onboarded some days after the start."""

    subscriptions: list[SubscriptionTerms]
    onboard_on: date


@st.composite
def worlds(draw: st.DrawFn, *, max_subscriptions: int = 3, max_backdate: int = 200) -> World:
    start = draw(starts)
    bill_day = draw(st.integers(1, 31))
    subscriptions = []
    for index in range(draw(st.integers(1, max_subscriptions))):
        unit = draw(st.sampled_from([MONTH, MONTH, YEAR, WEEK]))
        if unit is WEEK:
            weekday = draw(st.none() | st.integers(1, 7))
            cadence = Cadence(WEEK, draw(st.integers(1, 2)), bill_day, bill_weekday=weekday)
        elif unit is YEAR:
            cadence = Cadence(YEAR, 1, bill_day, bill_month=draw(st.none() | st.integers(1, 12)))
        else:
            count = draw(st.sampled_from([1, 1, 3, 6]))
            cadence = Cadence(MONTH, count, bill_day, bill_month=draw(st.none() | st.integers(1, 12)))
        subscriptions.append(
            SubscriptionTerms(
                key=f"sub-{index}",
                plan=f"plan-{index}",
                amount_minor=draw(st.integers(0, 10**7)),
                cadence=cadence,
                start_date=start,
                timing=draw(st.sampled_from(list(Timing))),
                proration=draw(st.sampled_from(list(Proration))),
                position=index,
            )
        )
    return World(subscriptions, start + timedelta(days=draw(st.integers(0, max_backdate))))


def account(world: World, combine: bool) -> Account:
    return Account(list(world.subscriptions), combine=combine, max_catch_up=10_000)


def billed_lines(acct: Account) -> list[tuple[str, date, date, int]]:
    return sorted(
        (c.subscription_key, c.period.start, c.period.end, c.amount_minor)
        for invoice in acct.invoices
        for c in invoice.charges
    )


def due_by(sub: SubscriptionTerms, day: date) -> list[BillingPeriod]:
    """Every period of ``sub`` due on or before ``day``, computed from the calendar alone."""
    due: list[BillingPeriod] = []
    for p in sub.cadence.periods(sub.start_date):
        if (p.start if sub.timing is Timing.ADVANCE else p.end) > day:
            return due
        due.append(p)
    raise AssertionError("unreachable: periods are endless")


@PROPERTY
@given(world=worlds(), combine=st.booleans())
def test_composition_is_idempotent(world: World, combine: bool) -> None:
    acct = account(world, combine)
    first = acct.bill(world.onboard_on, onboarding=True)
    again = acct.bill(world.onboard_on, onboarding=True)  # the same onboarding, redelivered
    assert again.invoices == ()
    assert again.billed_until == first.billed_until
    assert again.next_bill_dates == first.next_bill_dates
    next_day = world.onboard_on + timedelta(days=1)
    acct.bill(next_day)
    assert acct.bill(next_day).invoices == ()  # the next day's run, triggered twice


@HEAVY
@given(world=worlds(), combine=st.booleans(), days=st.integers(1, 150))
def test_day_by_day_composition_bills_each_due_period_once(world: World, combine: bool, days: int) -> None:
    acct = account(world, combine)
    until = world.onboard_on + timedelta(days=days)
    run_daily(acct, world.onboard_on, until)
    lines = billed_lines(acct)
    assert len(set(lines)) == len(lines)  # nothing billed twice
    for sub in world.subscriptions:
        billed = [(start, end) for key, start, end, _ in lines if key == sub.key]
        expected = due_by(sub, until)
        assert billed == [(p.start, p.end) for p in expected]  # contiguous from the start, nothing missing
        if billed:
            assert billed[0][0] == sub.start_date
            assert all(b[0] == a[1] for a, b in pairwise(billed))
        amounts = [amount for key, _, _, amount in lines if key == sub.key]
        assert amounts == [charge(sub.amount_minor, p, sub.proration) for p in expected]
    timing = {sub.key: sub.timing for sub in world.subscriptions}
    for invoice in acct.invoices:
        assert invoice.charges
        for c in invoice.charges:  # never billed before it is due
            due = c.period.start if timing[c.subscription_key] is Timing.ADVANCE else c.period.end
            assert due <= invoice.issue_date
    assert acct.bill(until).invoices == ()  # and a second run on the last day finds nothing new


@PROPERTY
@given(world=worlds())
def test_combined_and_separate_runs_bill_the_same_by_the_day_after_onboarding(world: World) -> None:
    combined, separate = account(world, combine=True), account(world, combine=False)
    next_day = world.onboard_on + timedelta(days=1)
    run_daily(combined, world.onboard_on, next_day)
    run_daily(separate, world.onboard_on, next_day)
    assert billed_lines(combined) == billed_lines(separate)
    assert len(combined.history[0].invoices) <= 1
    assert all(len({c.period.start for c in i.charges}) == 1 for i in separate.invoices)  # one period each


# -- balances ------------------------------------------------------------------------------------------------

CREDIT_LIKE = [BalanceKind.CREDIT, BalanceKind.GIFT, BalanceKind.REFERRAL]


@st.composite
def balance_lines(draw: st.DrawFn, sequence: int, day0: date) -> OpenBalanceLine:
    """A line of any kind, effective within 60 days of ``day0``, credits sometimes with an expiry."""
    kind = draw(st.sampled_from([*CREDIT_LIKE, BalanceKind.DISCOUNT, BalanceKind.ADJUSTMENT]))
    effective = day0 + timedelta(days=draw(st.integers(0, 60)))
    expires_on = None
    if kind is not BalanceKind.DISCOUNT and draw(st.booleans()):
        expires_on = effective + timedelta(days=draw(st.integers(-5, 60)))
    percent: Fraction | None = None
    amount = draw(st.integers(0, 20_000))
    if kind is BalanceKind.DISCOUNT and draw(st.booleans()):
        percent, amount = Fraction(draw(st.integers(1, 1000)), 10), 0  # 0.1% .. 100%
    elif kind is BalanceKind.ADJUSTMENT:
        amount = draw(st.integers(-20_000, 20_000))
    return OpenBalanceLine(f"line-{sequence}", kind, sequence, effective, amount, percent, expires_on)


def granted(line: OpenBalanceLine) -> int:
    """What a line can take off invoices: credits, negative adjustments, fixed discounts (not percents)."""
    if line.is_credit or (line.kind is BalanceKind.DISCOUNT and line.percent is None):
        return abs(line.remaining_minor)
    return 0


@st.composite
def balance_stories(draw: st.DrawFn) -> tuple[list[tuple[date, int]], list[OpenBalanceLine]]:
    day0 = date(2020, 1, 1)
    lines = [draw(balance_lines(sequence, day0)) for sequence in range(draw(st.integers(0, 8)))]
    offsets = sorted(set(draw(st.lists(st.integers(0, 90), max_size=10))))
    invoices = [(day0 + timedelta(days=offset), draw(st.integers(0, 50_000))) for offset in offsets]
    return invoices, lines


@PROPERTY
@given(story=balance_stories())
def test_credit_is_conserved_and_totals_are_never_negative(
    story: tuple[list[tuple[date, int]], list[OpenBalanceLine]],
) -> None:
    invoices, lines = story
    kinds = {line.line_id: line for line in lines}
    given_total = sum(granted(line) for line in lines)
    applied = lapsed = 0
    open_lines: tuple[OpenBalanceLine, ...] = tuple(lines)
    for issue_date, recurring in invoices:
        outcome = apply_balance(recurring, open_lines, issue_date)
        total = recurring + sum(m.invoice_amount_minor for m in outcome.movements)
        assert total >= 0
        for m in outcome.movements:
            line = kinds[m.line_id]
            assert m.consumed_minor >= 0
            if m.movement is MovementKind.LAPSED:
                assert m.invoice_amount_minor == 0
            if granted(line):
                applied += m.consumed_minor if m.movement is MovementKind.APPLIED else 0
                lapsed += m.consumed_minor if m.movement is MovementKind.LAPSED else 0
        open_lines = outcome.remaining
    left = sum(granted(line) for line in open_lines)
    assert given_total == applied + lapsed + left


@HEAVY
@given(
    amount=st.integers(0, 10_000),
    bill_day=st.integers(1, 31),
    backdate=st.integers(0, 70),
    days=st.integers(0, 120),
    arrivals=st.lists(st.tuples(st.integers(0, 120), st.integers(0, 40)), max_size=6),
    combine=st.booleans(),
    data=st.data(),
)
def test_composed_invoices_conserve_credit_and_never_go_negative(
    amount: int,
    bill_day: int,
    backdate: int,
    days: int,
    arrivals: list[tuple[int, int]],
    combine: bool,
    data: st.DataObject,
) -> None:
    onboard_on = date(2020, 3, 1)
    start = onboard_on - timedelta(days=backdate)
    sub = SubscriptionTerms("s", "p", amount, Cadence(MONTH, 1, bill_day), start)
    by_day: dict[date, list[OpenBalanceLine]] = {}
    lines = []
    for sequence, (arrival, delay) in enumerate(sorted(arrivals)):
        day = onboard_on + timedelta(days=arrival)
        line = data.draw(balance_lines(sequence, day - timedelta(days=delay)))
        by_day.setdefault(day, []).append(line)
        lines.append(line)
    acct = Account([sub], combine=combine, max_catch_up=10_000)
    until = onboard_on + timedelta(days=days)
    run_daily(acct, onboard_on, until, arrivals=by_day)
    arrived = [line for day, day_lines in by_day.items() if day <= until for line in day_lines]
    kinds = {line.line_id: line for line in lines}
    movements = [m for invoice in acct.invoices for m in invoice.balance] + [
        m for result in acct.history for m in result.lapses
    ]
    used = Counter[str]()
    for m in movements:
        if granted(kinds[m.line_id]):
            used[m.line_id] += m.consumed_minor
    left = {line.line_id: granted(line) for line in acct.balance}
    for line in arrived:
        assert granted(line) == used[line.line_id] + left.get(line.line_id, 0), line
    for invoice in acct.invoices:
        assert invoice.total_minor >= 0
        assert invoice.total_minor == invoice.subtotal_minor - invoice.discount_minor - invoice.credit_minor


@PROPERTY
@given(start=starts, bill_day=st.integers(1, 31), count=st.sampled_from([1, 2, 3, 6, 12]),
       resume_months=st.integers(0, 120))
def test_month_anchors_agree_with_dateutil(start: date, bill_day: int, count: int, resume_months: int) -> None:
    # dateutil is the oracle: relativedelta(day=B) clamps to the month's end exactly as an anchor does,
    # and the n-th anchor is first + relativedelta(months=n*count) re-clamped to B, never drifting.
    from dateutil.relativedelta import relativedelta

    cadence = Cadence(MONTH, count, bill_day)
    first = start + relativedelta(day=bill_day)
    if first < start:
        first = start + relativedelta(months=1, day=bill_day)
    assert cadence.first_anchor(start) == first
    resume = start + relativedelta(months=resume_months)
    expected = first
    n = 0
    while expected < resume:
        n += 1
        expected = first + relativedelta(months=n * count, day=bill_day)
    period = next(iter(cadence.periods(start, resume_at=resume)))
    assert period.start == (expected if resume > start else (start if start < first else first))


@PROPERTY
@given(minor=st.integers(-(2**63) + 1, 2**63 - 1), currency=st.sampled_from(["USD", "JPY", "KWD", "CLF", "BHD"]))
def test_format_amount_is_the_exact_decimal(minor: int, currency: str) -> None:
    # Integer formatting (fast) against Decimal's own rendering of the same scaled value (obviously right).
    from decimal import Decimal

    from models.billing.money import minor_units

    digits = minor_units(currency)
    assert format_amount(minor, currency) == str(Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)))
