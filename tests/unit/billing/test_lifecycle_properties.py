"""Properties of the lifecycle core on random timelines and billing histories (hypothesis).

Two levels: the rating functions alone, on a random period, timeline and arbitrary billed history;
and the generator driven day by day through random messages (changes, pauses, resumes, cancels,
bill-day changes, some backdated, some with ``invoice_now`` or ``proration: none``), as the shell
would run it. Rounding: every line is rounded once, so a period's billed total after corrections
equals its directly computed range lines exactly in rates (before rounding) and within half a
minor unit per line after rounding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from fractions import Fraction
from itertools import islice, pairwise

from hypothesis import event, given, settings
from hypothesis import strategies as st

from models.billing.calendar import BillingPeriod, Cadence, IntervalUnit
from models.billing.composition import SubscriptionTerms, Timing, compose
from models.billing.errors import InvalidChange
from models.billing.proration import Proration, charge
from models.billing.rating import BilledRange, LineKind, corrections, line_amount, range_lines, weight
from models.billing.schedule import Schedule
from models.billing.timeline import PriceTimeline
from tests.unit.billing.lifecycle_helpers import LifecycleAccount

PROPERTY = settings(max_examples=80, deadline=None)
DRIVER = settings(max_examples=50, deadline=None)
PLANS = ("a", "b", "c")
prices = st.sampled_from([0, 1, 999, 3000, 4999, 6000, 12345])
policies = st.sampled_from(list(Proration))
starts = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31))


@st.composite
def cadences(draw: st.DrawFn, *, weeks: bool = True) -> Cadence:
    units = [IntervalUnit.MONTH, IntervalUnit.YEAR] + ([IntervalUnit.WEEK] if weeks else [])
    unit = draw(st.sampled_from(units))
    if unit is IntervalUnit.WEEK:
        return Cadence(unit, draw(st.integers(1, 2)), 1, bill_weekday=draw(st.none() | st.integers(1, 7)))
    count = 1 if unit is IntervalUnit.YEAR else draw(st.sampled_from([1, 1, 2, 3]))
    return Cadence(unit, count, draw(st.integers(1, 31)))


@st.composite
def timelines(draw: st.DrawFn, start: date, span: int) -> PriceTimeline:
    """A timeline built by valid messages only (an invalid one is rejected, as a handler would)."""
    timeline = PriceTimeline(start, draw(st.sampled_from(PLANS)), draw(prices))
    for _ in range(draw(st.integers(0, 5))):
        day = start + timedelta(days=draw(st.integers(0, span)))
        kind = draw(st.sampled_from(["change", "change", "pause", "resume", "cancel"]))
        try:
            if kind == "change":
                timeline = timeline.changed(day, draw(st.sampled_from(PLANS)), draw(prices))
            elif kind == "pause":
                until = draw(st.none() | st.integers(1, span).map(lambda n, day=day: day + timedelta(days=n)))
                timeline = timeline.paused(day, until)
            elif kind == "resume":
                timeline = timeline.resumed(day)
            else:
                timeline = timeline.ended(day)
        except InvalidChange:
            pass
    return timeline


def per_day(lines: Iterable[BilledRange], period: BillingPeriod) -> dict[date, frozenset[tuple[str, int]]]:
    """What each day of ``period`` is billed at: signed rates summed per plan, zeros dropped."""
    rates: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in lines:
        if line.period_start != period.start:
            continue
        day = line.start
        while day < line.end:
            rates[day][line.plan] += line.rate_minor
            day += timedelta(days=1)
    days = [period.start + timedelta(days=k) for k in range(period.days)]
    return {day: frozenset((p, r) for p, r in rates[day].items() if r) for day in days}


def should(timeline: PriceTimeline, period: BillingPeriod) -> dict[date, frozenset[tuple[str, int]]]:
    found: dict[date, frozenset[tuple[str, int]]] = {}
    for piece in timeline.ranges(period.start, period.end):
        for k in range(piece.days):
            found[piece.start + timedelta(days=k)] = frozenset({piece.rate_key} if piece.rate_key else ())
    return found


def exact(lines: Iterable[BilledRange], period: BillingPeriod, policy: Proration) -> Fraction:
    return sum((line.rate_minor * weight(period, (line.end - line.start).days, policy) for line in lines
                if line.period_start == period.start), Fraction(0))


# -- the rating functions alone --------------------------------------------------------------------------


@st.composite
def rated_periods(draw: st.DrawFn) -> tuple[BillingPeriod, PriceTimeline, Proration]:
    cadence = draw(cadences())
    start = draw(starts)
    periods = list(islice(cadence.periods(start), 3))
    period = draw(st.sampled_from(periods))
    timeline = draw(timelines(start, (period.end - start).days + 10))
    return period, timeline, draw(policies)


@st.composite
def histories(draw: st.DrawFn, period: BillingPeriod) -> list[BilledRange]:
    """Any sequence of signed rates over ranges of ``period``, not only the ones the core would write."""
    found = []
    for _ in range(draw(st.integers(0, 6))):
        lo = draw(st.integers(0, period.days - 1))
        hi = draw(st.integers(lo + 1, period.days))
        rate = draw(prices) * draw(st.sampled_from([1, 1, -1]))
        found.append(BilledRange(period.start, period.end, period.cycle_days, period.start + timedelta(days=lo),
                                 period.start + timedelta(days=hi), draw(st.sampled_from(PLANS)), rate))
    return found


@PROPERTY
@given(data=st.data(), case=rated_periods())
def test_corrections_make_any_billed_history_equal_the_timeline_and_a_rerun_adds_nothing(
    data: st.DataObject, case: tuple[BillingPeriod, PriceTimeline, Proration]
) -> None:
    period, timeline, policy = case
    if weight(period, 1, policy) == 0:
        return  # a free stub is never corrected: covered below
    history = data.draw(histories(period))
    fixes = corrections("s", period, history, timeline, policy)
    after = [*history, *(line.billed_range() for line in fixes)]
    assert per_day(after, period) == should(timeline, period)
    assert corrections("s", period, after, timeline, policy) == []  # idempotent
    direct = range_lines("s", period, timeline, policy)
    # exactly equal before rounding; each line is rounded once, at most half a minor unit away
    assert exact(after, period, policy) == exact((line.billed_range() for line in direct), period, policy)
    billed_total = sum(line_amount(b.rate_minor, period, (b.end - b.start).days, policy) for b in after)
    assert 2 * abs(billed_total - sum(line.amount_minor for line in direct)) <= len(after) + len(direct)
    for line in fixes:
        assert line.kind is LineKind.PRORATION and period.start <= line.start < line.end <= period.end
        assert line.amount_minor == line_amount(line.rate_minor, period, line.days, policy)


@PROPERTY
@given(case=rated_periods())
def test_range_lines_tile_the_period_where_it_bills_and_skip_the_rest(
    case: tuple[BillingPeriod, PriceTimeline, Proration]
) -> None:
    period, timeline, policy = case
    lines = range_lines("s", period, timeline, policy)
    billed_days = sorted((line.start, line.end) for line in lines if line.rate_minor)
    for (_, end), (start, _) in pairwise(billed_days):
        assert end <= start  # no overlap
    for line in lines:
        piece = timeline.price_on(line.start)
        assert (line.plan, line.rate_minor) == (piece.plan, piece.amount_minor)
        assert timeline.end is None or line.end <= timeline.end  # nothing on or after the end


@PROPERTY
@given(cadence=cadences(), start=starts, amount=prices, policy=policies, k=st.integers(0, 2))
def test_without_a_change_range_lines_are_todays_charge(
    cadence: Cadence, start: date, amount: int, policy: Proration, k: int
) -> None:
    period = list(islice(cadence.periods(start), 3))[k]
    (line,) = range_lines("s", period, PriceTimeline(start, "p", amount), policy)
    assert (line.amount_minor, line.start, line.end, line.rate_minor) == (
        charge(amount, period, policy), period.start, period.end, amount)


@PROPERTY
@given(cadence=cadences(), start=starts, amount=prices, k=st.integers(0, 3), data=st.data())
def test_a_pause_covering_a_whole_period_bills_nothing_for_it(
    cadence: Cadence, start: date, amount: int, k: int, data: st.DataObject
) -> None:
    period = list(islice(cadence.periods(start), 4))[k]
    before = data.draw(st.integers(0, (period.start - start).days))
    until = data.draw(st.none() | st.integers(0, 20).map(lambda n: period.end + timedelta(days=n)))
    timeline = PriceTimeline(start, "p", amount).paused(period.start - timedelta(days=before), until)
    assert range_lines("s", period, timeline, Proration.DAILY) == []
    sub = SubscriptionTerms("s", "p", amount, cadence, start, timeline=timeline)
    result = compose([sub], [], period.end, combine=True)
    assert all(c.period != period for invoice in result.invoices for c in invoice.charges)


@PROPERTY
@given(cadence=cadences(), start=starts, data=st.data())
def test_a_change_followed_by_its_inverse_nets_to_zero(cadence: Cadence, start: date, data: st.DataObject) -> None:
    period = list(islice(cadence.periods(start), 2))[-1]
    old, new = data.draw(prices), data.draw(prices)
    effective = period.start + timedelta(days=data.draw(st.integers(0, period.days - 1)))
    timeline = PriceTimeline(start, "basic", old)
    billed = [line.billed_range() for line in range_lines("s", period, timeline, Proration.DAILY)]
    there = timeline.changed(effective, "pro", new)
    first = corrections("s", period, billed, there, Proration.DAILY)
    back = there.changed(effective, "basic", old)  # the inverse, arriving later for the same day
    second = corrections("s", period, [*billed, *(c.billed_range() for c in first)], back, Proration.DAILY)
    lines = [*first, *second]
    assert abs(sum(line.amount_minor for line in lines)) <= len(lines)
    assert per_day([*billed, *(c.billed_range() for c in lines)], period) == per_day(billed, period)


# -- the schedule ------------------------------------------------------------------------------------------


@PROPERTY
@given(cadence=cadences(), start=starts, data=st.data())
def test_bill_day_changes_tile_time_without_gaps_or_overlaps(
    cadence: Cadence, start: date, data: st.DataObject
) -> None:
    schedule = Schedule.single(start, cadence)
    day = start - timedelta(days=data.draw(st.integers(0, 40)))
    for _ in range(data.draw(st.integers(1, 4))):
        day += timedelta(days=data.draw(st.integers(0, 200)))
        before = list(islice(schedule.periods(), 30))
        current = schedule.period_containing(day)
        bill_day = data.draw(st.integers(1, 31))
        schedule = schedule.with_bill_day(bill_day, day)
        after = list(islice(schedule.periods(), 30))
        kept = [p for p in before if p.end <= current.end]
        assert after[: len(kept)] == kept  # the current period and those before it stand
        if cadence.unit is IntervalUnit.WEEK:
            assert after == before
        else:
            tail = list(islice(replace(cadence, bill_day=bill_day).periods(current.end), 30 - len(kept)))
            assert after[len(kept):] == tail  # bridge stub (if any) then the new bill day's periods
    periods = list(islice(schedule.periods(), 40))
    assert periods[0].start == start
    assert all(p.days > 0 for p in periods)
    for previous, following in pairwise(periods):
        assert following.start == previous.end
    for k in (0, 5, 17, 39):  # resuming at a period start yields the same tail
        assert list(islice(schedule.periods(resume_at=periods[k].start), 40 - k)) == periods[k:]
    for period in periods[:12]:
        assert schedule.period_containing(period.start) == period
        assert schedule.period_containing(period.last_day) == period


# -- the generator, day by day ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A lifecycle message processed on ``day`` (offset from the start) with its own effective offset."""

    day: int
    kind: str
    effective: int
    plan: str
    amount: int
    flag: bool
    bill_day: int


messages = st.builds(
    Message,
    day=st.integers(1, 110),  # after the onboarding on day 0
    kind=st.sampled_from(["change", "change", "pause", "resume", "resume", "cancel", "bill_day"]),
    effective=st.integers(-45, 30),
    plan=st.sampled_from(PLANS),
    amount=prices,
    flag=st.booleans(),
    bill_day=st.integers(1, 31),
)


def deliver(account: LifecycleAccount, message: Message, start: date, today: date) -> bool:
    """What a handler does: validate against the stored terms, store, and compose at once if asked;
    says whether the message was accepted."""
    terms = account.subscriptions["s"]
    timeline, schedule = terms.price_timeline, terms.period_schedule
    effective = max(start, today + timedelta(days=message.effective))
    invoice_now = False
    try:
        if message.kind == "change":
            if message.flag:  # proration: none moves E to the start of the next period
                effective = schedule.next_boundary(effective)
            timeline = timeline.changed(effective, message.plan, message.amount)
            invoice_now = message.effective % 3 == 0
        elif message.kind == "pause":
            timeline = timeline.paused(effective, None if message.flag else effective + timedelta(days=20))
        elif message.kind == "resume":
            timeline = timeline.resumed(effective)
        elif message.kind == "cancel":
            end = schedule.period_containing(today).end if message.flag else effective  # at_period_end
            timeline = timeline.ended(end)
        else:
            schedule = schedule.with_bill_day(message.bill_day, today)
    except InvalidChange:
        return False
    account.update("s", lambda t: replace(t, timeline=timeline, schedule=schedule))
    account.bill(today, invoice_now=invoice_now)
    return True


@DRIVER
@given(
    cadence=cadences(),
    start=st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31)),
    amount=prices,
    timing=st.sampled_from(list(Timing)),
    policy=policies,
    combine=st.booleans(),
    inbox=st.lists(messages, min_size=1, max_size=7),
)
def test_random_lives_bill_exactly_the_timeline_once_settled(
    cadence: Cadence, start: date, amount: int, timing: Timing, policy: Proration, combine: bool,
    inbox: Sequence[Message],
) -> None:
    sub = SubscriptionTerms("s", "a", amount, cadence, start, timing=timing, proration=policy)
    account = LifecycleAccount({"s": sub}, combine)
    by_day: dict[int, list[Message]] = defaultdict(list)
    for message in inbox:
        by_day[message.day].append(message)
    horizon = 120
    cancelled_on = None
    for offset in range(horizon + 1):
        today = start + timedelta(days=offset)
        for message in by_day[offset]:
            if deliver(account, message, start, today) and message.kind == "cancel":
                cancelled_on = today
        account.bill(today, onboarding=offset == 0)
    last = start + timedelta(days=horizon)
    account.bill(last, invoice_now=True)  # flush whatever waits for the next bill day
    assert account.bill(last).invoices == ()  # a rerun adds nothing
    assert account.bill(last, invoice_now=True).invoices == ()

    terms = account.subscriptions["s"]
    timeline = terms.price_timeline
    lines = account.lines_of("s")
    event(f"proration lines: {min(3, len(account.lines_of('s', LineKind.PRORATION)))}+")
    event(f"ended: {timeline.end is not None}, paused: {bool(timeline.pauses)}")
    event(f"bill-day segments: {len(terms.period_schedule.segments)}")
    stored = [line.billed_range() for line in lines]
    periods = {line.period for line in lines}
    for period in periods:
        if not weight(period, 1, policy):
            continue  # a free stub: nothing billed, nothing corrected
        assert per_day(stored, period) == should(timeline, period), period
        direct = range_lines("s", period, timeline, policy)
        mine = [line for line in lines if line.period == period]
        assert 2 * abs(sum(c.amount_minor for c in mine) - sum(c.amount_minor for c in direct)) <= (
            len(mine) + len(direct))
    if timeline.end is not None and cancelled_on is not None:  # once the end is known, nothing bills past it
        assert all(c.end <= timeline.end for i in account.invoices if i.issue_date >= cancelled_on
                   for c in i.charges if c.kind is LineKind.RECURRING)
    for invoice in account.invoices:
        assert invoice.total_minor >= 0
        assert invoice.system_credit_minor == max(0, -invoice.lines_minor)
        if invoice.system_credit_minor:
            assert invoice.balance == ()
    watermark = terms.billed_until
    schedule_periods = [p for p in islice(terms.period_schedule.periods(), 200) if watermark and p.end <= watermark]
    assert periods <= set(schedule_periods)  # every billed period is one of the schedule's


def test_cancel_in_the_future_is_settled_on_its_end() -> None:
    """Cancel processed on 25 Mar effective 5 Apr (billed to 14 Apr): the -10/31 line waits for 5 Apr,
    and the subscription's next bill date says so."""
    sub = SubscriptionTerms("s", "seat", 3100, Cadence(IntervalUnit.MONTH, 1, 15), date(2024, 3, 15),
                            billed_until=date(2024, 4, 15))
    billed = (BilledRange(date(2024, 3, 15), date(2024, 4, 15), 31, date(2024, 3, 15), date(2024, 4, 15), "seat",
                          3100),)
    ending = replace(sub, timeline=sub.price_timeline.ended(date(2024, 4, 5)), billed=billed)
    on_processing = compose([ending], [], date(2024, 3, 25), combine=True)
    assert on_processing.invoices == ()
    assert on_processing.next_bill_dates == {"s": date(2024, 4, 5)}
    assert on_processing.corrections_pending == {"s"}
    on_end = compose([ending], [], date(2024, 4, 5), combine=True)
    (invoice,) = on_end.invoices
    assert [(c.start, c.days, c.amount_minor) for c in invoice.charges] == [(date(2024, 4, 5), 10, -1000)]
    assert invoice.total_minor == 0 and invoice.system_credit_minor == 1000
    assert on_end.finished == {"s"} and on_end.next_bill_dates == {}


def test_overflowing_lines_are_refused_naming_the_field() -> None:
    big = 2**63 - 1
    subs = [SubscriptionTerms(f"s{k}", "p", big, Cadence(IntervalUnit.MONTH, 1, 1), date(2024, 1, 1))
            for k in range(2)]
    try:
        compose(subs, [], date(2024, 1, 1), combine=True)
    except InvalidChange:
        raise AssertionError("wrong error") from None
    except ValueError as error:
        assert "amount" in str(error) and "64-bit" in str(error)
    else:
        raise AssertionError("an overflowing invoice was composed")

