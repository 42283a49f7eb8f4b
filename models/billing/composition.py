"""Which invoices to issue now: compute what is due, subtract what was billed, invoice the rest.

This is Kill Bill's generator shape: the input says what was already billed (a watermark per
subscription, and for periods that may need correcting the billed ranges read back from their
invoice lines), the output is only the difference, so a rerun over its own output yields nothing
and overlapping bill runs are harmless.

Per subscription the generator reads a price timeline (``models.billing.timeline``) and a
schedule of periods across bill-day changes (``models.billing.schedule``); without them the
subscription is one price from its start on one cadence, and the result is what it always was.
Due periods are billed by range lines, corrections of billed periods ride on the next invoice
issued for that subscription (``models.billing.rating``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from itertools import groupby, takewhile

from models.billing.balance import Movement, MovementKind, OpenBalanceLine, apply_balance
from models.billing.calendar import BillingPeriod, Cadence
from models.billing.errors import CatchUpTooLong, InvalidChange, InvalidSchedule
from models.billing.money import checked_sum
from models.billing.proration import Proration, charge
from models.billing.rating import BilledRange, ChargeLine, LineKind, corrections, range_lines
from models.billing.schedule import Schedule
from models.billing.timeline import PriceTimeline

DEFAULT_MAX_CATCH_UP_PERIODS = 36


class Timing(StrEnum):
    ADVANCE = "advance"
    """A period is due on its first day."""
    ARREARS = "arrears"
    """A period is due the day after it ends (or on the subscription's end, if that comes first)."""


@dataclass(frozen=True)
class SubscriptionTerms:
    """A subscription as the core sees it; ``billed_until`` is the end of its last billed period.

    Lifecycle inputs, all optional (the defaults are a subscription that never changed):
    ``timeline``: its prices day by day (default: ``plan`` at ``amount_minor`` from ``start_date``);
    ``schedule``: its periods across bill-day changes (default: ``cadence`` from ``start_date``);
    ``billed``: the stored lines of billed periods that may need correcting (only those the caller
    wants rechecked; none = no corrections); ``recheck_from``: every billed period ending after this
    day is rechecked, those with no line in ``billed`` as billed at nothing (a paused period);
    ``settle_on``: issue pending corrections on or after this date even when no period is due
    (``invoice_now``); ``catching_up``: a ``subscription.add``
    with a past start processed now: the catch-up bound applies, and in separate mode only its
    earliest due period is invoiced today, the rest by the next day's bill run.
    """

    key: str
    plan: str
    amount_minor: int
    cadence: Cadence
    start_date: date
    timing: Timing = Timing.ADVANCE
    proration: Proration = Proration.DAILY
    billed_until: date | None = None
    position: int = 0
    timeline: PriceTimeline | None = None
    schedule: Schedule | None = None
    billed: tuple[BilledRange, ...] = ()
    settle_on: date | None = None
    catching_up: bool = False
    recheck_from: date | None = None
    _timeline: PriceTimeline | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timing", Timing(self.timing))
        object.__setattr__(self, "proration", Proration(self.proration))
        if self.timeline is not None and self.timeline.start != self.start_date:
            raise InvalidChange(
                "timeline", f"starts on {self.timeline.start}, not on the start date {self.start_date}"
            )
        if self.schedule is not None and self.schedule.start != self.start_date:
            raise InvalidSchedule(
                "schedule", f"starts on {self.schedule.start}, not on the start date {self.start_date}"
            )
        object.__setattr__(self, "_timeline", self.timeline)

    @property
    def price_timeline(self) -> PriceTimeline:
        """The given timeline, or one price from the start (built on first use: bill runs rarely need it)."""
        if self._timeline is None:
            object.__setattr__(self, "_timeline", PriceTimeline(self.start_date, self.plan, self.amount_minor))
        assert self._timeline is not None
        return self._timeline

    @property
    def period_schedule(self) -> Schedule:
        return self.schedule or Schedule.single(self.start_date, self.cadence)

    @property
    def end(self) -> date | None:
        """The first day not billed any more (a cancel), or None."""
        return None if self.timeline is None else self.timeline.end

    def due_date(self, period: BillingPeriod) -> date:
        if self.timing is Timing.ADVANCE:
            return period.start
        return period.end if self.end is None else min(period.end, self.end)

    def unbilled_periods(self, billed_until: date | None = None) -> Iterator[BillingPeriod]:
        """Every period not billed yet, in order: without end, or up to the one containing the end."""
        resume = billed_until if billed_until is not None else self.billed_until
        if self.schedule is None:
            periods = self.cadence.periods(self.start_date, resume_at=resume)
        else:
            periods = self.schedule.periods(resume_at=resume)
        end = self.end
        return periods if end is None else takewhile(lambda period: period.start < end, periods)

    def due_periods(self, as_of: date, limit: int | None = None) -> list[BillingPeriod]:
        """The unbilled periods due on or before ``as_of``; raises past ``limit`` of them."""
        due: list[BillingPeriod] = []
        for period in self.unbilled_periods():
            if self.due_date(period) > as_of:
                return due
            due.append(period)
            if limit is not None and len(due) > limit:
                raise CatchUpTooLong(
                    "start_date",
                    f"{self.start_date} would bill more than {limit} periods of {self.plan!r} at once; "
                    f"the bound is max_catch_up_periods = {limit}",
                )
        return due

    def next_bill_date(self, billed_until: date | None) -> date | None:
        """When the first period after ``billed_until`` falls due; None when none is left to bill."""
        period = next(iter(self.unbilled_periods(billed_until)), None)
        return None if period is None else self.due_date(period)

    def pending_corrections(self) -> list[ChargeLine]:
        """The proration lines that the billed ranges in ``billed`` call for now."""
        if not self.billed and self.recheck_from is None:
            return []
        by_period: dict[date, list[BilledRange]] = defaultdict(list)
        periods: dict[date, BillingPeriod] = {}
        for line in self.billed:
            by_period[line.period_start].append(line)
            periods.setdefault(line.period_start, line.period)
        for period in self._billed_periods_from(self.recheck_from):
            periods.setdefault(period.start, period)
        found: list[ChargeLine] = []
        for start in sorted(periods):
            period = periods[start]
            if self.billed_until is None or period.end > self.billed_until:
                raise InvalidChange("billed", f"period {period.start} .. {period.last_day} is not billed yet")
            found += corrections(self.key, period, by_period.get(start, []), self.price_timeline, self.proration,
                                 self.position)
        return found

    def _billed_periods_from(self, day: date | None) -> Iterator[BillingPeriod]:
        """The billed periods that end after ``day``, whether or not they have lines."""
        if day is None or self.billed_until is None or day >= self.billed_until:
            return
        schedule = self.period_schedule
        first = schedule.period_containing(max(day, self.start_date))
        for period in schedule.periods(resume_at=first.start if first.start > self.start_date else None):
            if period.start >= self.billed_until:
                return
            if period.end > day:
                yield period


@dataclass(frozen=True)
class InvoiceDraft:
    """One invoice to issue: its lines (recurring, then proration), what the balance did to it, and
    ``system_credit_minor``: when its lines sum below zero, it is issued at 0 and that difference
    becomes a ``credit`` balance line with author ``system`` (no balance line is applied to it)."""

    issue_date: date
    charges: tuple[ChargeLine, ...]
    balance: tuple[Movement, ...] = ()
    system_credit_minor: int = 0

    @property
    def recurring_minor(self) -> int:
        return sum(line.amount_minor for line in self.charges if line.kind is LineKind.RECURRING)

    @property
    def proration_minor(self) -> int:
        return sum(line.amount_minor for line in self.charges if line.kind is LineKind.PRORATION)

    @property
    def lines_minor(self) -> int:
        """Recurring and proration lines together: what the invoice bills before its balance."""
        return sum(line.amount_minor for line in self.charges)

    @property
    def subtotal_minor(self) -> int:
        return self.lines_minor + sum(m.invoice_amount_minor for m in self.balance if m.invoice_amount_minor > 0)

    @property
    def discount_minor(self) -> int:
        return -sum(m.invoice_amount_minor for m in self.balance if m.kind == "discount")

    @property
    def credit_minor(self) -> int:
        return -sum(
            m.invoice_amount_minor for m in self.balance if m.kind != "discount" and m.invoice_amount_minor < 0
        )

    @property
    def total_minor(self) -> int:
        return self.lines_minor + sum(m.invoice_amount_minor for m in self.balance) + self.system_credit_minor


@dataclass(frozen=True)
class Composition:
    """The invoices to issue now, the lapses they caused, and the state to store afterwards.

    ``next_bill_dates`` has no entry for a ``finished`` subscription (its end has passed and its
    corrections are settled); ``corrections_pending`` names those whose corrections wait for a later
    invoice (the caller keeps passing their billed ranges until they are issued).
    """

    invoices: tuple[InvoiceDraft, ...]
    lapses: tuple[Movement, ...]
    billed_until: dict[str, date]
    next_bill_dates: dict[str, date]
    balance_left: tuple[OpenBalanceLine, ...]
    hold_until: date | None = None
    finished: frozenset[str] = frozenset()
    corrections_pending: frozenset[str] = frozenset()

    @property
    def system_credit_minor(self) -> int:
        return sum(invoice.system_credit_minor for invoice in self.invoices)


@dataclass
class _Subscription:
    """One subscription's share of this composition (internal, built and then read once)."""

    terms: SubscriptionTerms
    due: list[BillingPeriod]
    lines: dict[date, list[ChargeLine]]
    corrections: list[ChargeLine]
    cutoff: date | None = None
    settled: bool = False

    def released(self, issued: set[tuple[str, date]]) -> list[BillingPeriod]:
        """The due periods that count as billed after this composition, in order, without a gap."""
        done: list[BillingPeriod] = []
        for period in self.due:
            has_lines = bool(self.lines.get(period.start))
            if has_lines and (self.terms.key, period.start) not in issued:
                break
            if not has_lines and self.cutoff is not None and period.start > self.cutoff:
                break
            done.append(period)
        return done


def compose(
    subscriptions: Sequence[SubscriptionTerms],
    balance_lines: Sequence[OpenBalanceLine],
    as_of: date,
    *,
    combine: bool,
    onboarding: bool = False,
    hold_until: date | None = None,
    max_catch_up: int = DEFAULT_MAX_CATCH_UP_PERIODS,
    invoice_now: bool = False,
) -> Composition:
    """The invoices an account gets on its local date ``as_of``.

    ``combine``: everything due goes on one invoice; otherwise one invoice per billing period
    (period start), and at onboarding only the earliest one is issued on ``as_of``: the rest wait
    for the first bill run on or after ``as_of`` + 1 day (Aria's scenario B). ``hold_until`` is
    that date, as stored after onboarding.

    Pending corrections of a subscription go on the first invoice issued today that carries its
    regular lines; without one they are issued today only when ``invoice_now``, when its
    ``settle_on`` has come, or when it has nothing left to bill and its end has come (a cancel is
    settled at once, or on its end if later); otherwise they wait, and the subscription's next bill
    date says when.
    """
    if hold_until is not None and as_of < hold_until:
        return _nothing(subscriptions, balance_lines, hold_until)
    subs = [_prepare(terms, as_of, max_catch_up if onboarding or terms.catching_up else None)
            for terms in subscriptions]
    recurring = sorted(
        (line for sub in subs for lines in sub.lines.values() for line in lines),
        key=lambda line: (line.period.start, line.position, line.subscription_key, line.start),
    )
    groups = [recurring] if combine else [list(g) for _, g in groupby(recurring, key=lambda c: c.period.start)]
    groups = [group for group in groups if group]
    new_hold = as_of + timedelta(days=1) if onboarding and not combine and len(groups) > 1 else None
    if new_hold is not None:
        for sub in subs:
            sub.cutoff = groups[0][0].period.start
        groups = groups[:1]
    elif not combine:
        groups, deferred = _defer_catch_up(groups, subs)
        new_hold = as_of + timedelta(days=1) if deferred else None
    _place_corrections(groups, subs, as_of, combine=combine, invoice_now=invoice_now)

    invoices: list[InvoiceDraft] = []
    lapses: list[Movement] = []
    open_lines: Sequence[OpenBalanceLine] = balance_lines
    for group in groups:
        invoice, lapsed, open_lines = _issue(group, open_lines, as_of)
        invoices.append(invoice)
        lapses.extend(lapsed)

    issued = {(line.subscription_key, line.period.start) for group in groups for line in group}
    return _outcome(subs, issued, invoices, lapses, open_lines, as_of, new_hold)


def _prepare(terms: SubscriptionTerms, as_of: date, limit: int | None) -> _Subscription:
    due = terms.due_periods(as_of, limit)
    if terms.timeline is None:  # one price from the start: the range lines are today's charge, cheaply
        lines = {
            period.start: [ChargeLine(terms.key, terms.plan, period,
                                      charge(terms.amount_minor, period, terms.proration), terms.position,
                                      rate_minor=terms.amount_minor)]
            for period in due
        }
    else:
        lines = {
            period.start: range_lines(terms.key, period, terms.timeline, terms.proration, terms.position)
            for period in due
        }
    return _Subscription(terms, due, lines, terms.pending_corrections())


def _defer_catch_up(
    groups: list[list[ChargeLine]], subs: Sequence[_Subscription]
) -> tuple[list[list[ChargeLine]], bool]:
    """Separate invoices: a subscription catching up gets only its earliest due period today.

    When that leaves some of its periods for later, the account is held to the next day, as after
    an onboarding (a second run today must not bill them either); says whether it did.
    """
    first: dict[str, date] = {}
    for sub in subs:
        if sub.terms.catching_up and sub.due:
            with_lines = [p.start for p in sub.due if sub.lines.get(p.start)]
            first[sub.terms.key] = with_lines[0] if with_lines else sub.due[0].start
            sub.cutoff = first[sub.terms.key]
    if not first:
        return groups, False
    kept = [[line for line in group if line.period.start <= first.get(line.subscription_key, date.max)]
            for group in groups]
    deferred = any(p.start > first[s.terms.key] for s in subs if s.terms.key in first for p in s.due)
    return [group for group in kept if group], deferred


def _place_corrections(
    groups: list[list[ChargeLine]], subs: Sequence[_Subscription], as_of: date, *, combine: bool, invoice_now: bool
) -> None:
    """Put each subscription's corrections beside its regular lines, or on a settlement invoice."""
    settling: list[ChargeLine] = []
    for sub in subs:
        if not sub.corrections:
            continue
        home = next((g for g in groups if any(c.subscription_key == sub.terms.key for c in g)), None)
        if home is not None:
            home.extend(sub.corrections)
        elif _must_settle(sub, as_of, invoice_now):
            if combine and groups:
                groups[0].extend(sub.corrections)
            else:
                settling.extend(sub.corrections)
        else:
            continue
        sub.settled = True
    if settling:
        groups.append(settling)
    for group in groups:
        group.sort(key=_line_order)


def _line_order(line: ChargeLine) -> tuple[int, date, int, str, date, int]:
    """Recurring lines in date order, then proration lines by period and range, the minus side first."""
    proration = line.kind is LineKind.PRORATION
    return (int(proration), line.period.start if not proration else date.min, line.position,
            line.subscription_key, line.start if not proration else line.period.start, int(line.rate_minor > 0))


def _must_settle(sub: _Subscription, as_of: date, invoice_now: bool) -> bool:
    terms = sub.terms
    if invoice_now or (terms.settle_on is not None and terms.settle_on <= as_of):
        return True
    return terms.end is not None and terms.end <= as_of and _nothing_left(sub)


def _nothing_left(sub: _Subscription) -> bool:
    """No period remains to bill after the due ones (an ended subscription)."""
    after = sub.due[-1].end if sub.due else sub.terms.billed_until
    return sub.terms.next_bill_date(after) is None


def _issue(
    group: list[ChargeLine], open_lines: Sequence[OpenBalanceLine], as_of: date
) -> tuple[InvoiceDraft, tuple[Movement, ...], Sequence[OpenBalanceLine]]:
    """One invoice: below zero it is issued at 0 with system credit, otherwise the balance applies."""
    total = checked_sum((line.amount_minor for line in group), "amount")
    if total < 0:
        return InvoiceDraft(as_of, tuple(group), (), -total), (), open_lines
    recurring = checked_sum((c.amount_minor for c in group if c.kind is LineKind.RECURRING), "amount")
    has_recurring = any(c.kind is LineKind.RECURRING for c in group)
    outcome = apply_balance(recurring, open_lines, as_of, proration_minor=total - recurring,
                            with_discounts=has_recurring)
    checked_sum((total, *(m.invoice_amount_minor for m in outcome.applied)), "total")
    return InvoiceDraft(as_of, tuple(group), outcome.applied), outcome.lapsed, outcome.remaining


def _outcome(
    subs: Sequence[_Subscription],
    issued: set[tuple[str, date]],
    invoices: list[InvoiceDraft],
    lapses: list[Movement],
    open_lines: Sequence[OpenBalanceLine],
    as_of: date,
    new_hold: date | None,
) -> Composition:
    billed: dict[str, date] = {}
    next_dates: dict[str, date] = {}
    finished: set[str] = set()
    pending: set[str] = set()
    for sub in subs:
        terms = sub.terms
        released = sub.released(issued)
        watermark = released[-1].end if released else terms.billed_until
        if watermark is not None:
            billed[terms.key] = watermark
        waiting = bool(sub.corrections) and not sub.settled
        if waiting:
            pending.add(terms.key)
        upcoming = _next_date(terms, watermark, waiting, as_of)
        if upcoming is None:
            finished.add(terms.key)
            continue
        next_dates[terms.key] = max(upcoming, new_hold or date.min)
    return Composition(
        invoices=tuple(invoices),
        lapses=tuple(lapses),
        billed_until=billed,
        next_bill_dates=next_dates,
        balance_left=tuple(open_lines),
        hold_until=new_hold,
        finished=frozenset(finished),
        corrections_pending=frozenset(pending),
    )


def _next_date(terms: SubscriptionTerms, watermark: date | None, waiting: bool, as_of: date) -> date | None:
    """When a bill run must wake the subscription: its next due period, or sooner to settle."""
    candidates = [day for day in (terms.next_bill_date(watermark),) if day is not None]
    if waiting:
        if terms.settle_on is not None:
            candidates.append(max(terms.settle_on, as_of))
        if not candidates and terms.end is not None:
            candidates.append(max(terms.end, as_of))
    return min(candidates) if candidates else None


def _nothing(
    subscriptions: Sequence[SubscriptionTerms], balance_lines: Sequence[OpenBalanceLine], hold_until: date
) -> Composition:
    next_dates: dict[str, date] = {}
    for terms in subscriptions:
        upcoming = _next_date(terms, terms.billed_until, bool(terms.pending_corrections()), hold_until)
        if upcoming is not None:
            next_dates[terms.key] = max(upcoming, hold_until)
    return Composition(
        invoices=(),
        lapses=(),
        billed_until={terms.key: terms.billed_until for terms in subscriptions if terms.billed_until},
        next_bill_dates=next_dates,
        balance_left=tuple(balance_lines),
        hold_until=hold_until,
    )


def iter_lines(invoices: Iterable[InvoiceDraft]) -> Iterator[ChargeLine]:
    """Every recurring and proration line of ``invoices``, in order (to store or feed back)."""
    for invoice in invoices:
        yield from invoice.charges


__all__ = [
    "DEFAULT_MAX_CATCH_UP_PERIODS",
    "ChargeLine",
    "Composition",
    "InvoiceDraft",
    "MovementKind",
    "SubscriptionTerms",
    "Timing",
    "compose",
    "iter_lines",
]
