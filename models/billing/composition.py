"""Which invoices to issue now: compute what is due, subtract what was billed, invoice the rest.

This is Kill Bill's generator shape: the input says what was already billed (a watermark per
subscription), the output is only the difference, so a rerun over its own output yields nothing
and overlapping bill runs are harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from itertools import groupby

from models.billing.balance import Movement, MovementKind, OpenBalanceLine, apply_balance
from models.billing.calendar import BillingPeriod, Cadence
from models.billing.errors import CatchUpTooLong
from models.billing.proration import Proration, charge

DEFAULT_MAX_CATCH_UP_PERIODS = 36


class Timing(StrEnum):
    ADVANCE = "advance"
    """A period is due on its first day."""
    ARREARS = "arrears"
    """A period is due the day after it ends."""


@dataclass(frozen=True)
class SubscriptionTerms:
    """A subscription as the core sees it; ``billed_until`` is the end of its last billed period."""

    key: str
    plan: str
    amount_minor: int
    cadence: Cadence
    start_date: date
    timing: Timing = Timing.ADVANCE
    proration: Proration = Proration.DAILY
    billed_until: date | None = None
    position: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "timing", Timing(self.timing))
        object.__setattr__(self, "proration", Proration(self.proration))

    def due_date(self, period: BillingPeriod) -> date:
        return period.start if self.timing is Timing.ADVANCE else period.end

    def unbilled_periods(self) -> Iterable[BillingPeriod]:
        """Every period not billed yet, in order, without end."""
        return self.cadence.periods(self.start_date, resume_at=self.billed_until)

    def due_periods(self, as_of: date, limit: int | None = None) -> list[BillingPeriod]:
        """The unbilled periods due on or before ``as_of``; raises past ``limit`` of them."""
        due: list[BillingPeriod] = []
        periods = iter(self.unbilled_periods())
        while True:
            period = next(periods)
            if self.due_date(period) > as_of:
                return due
            due.append(period)
            if limit is not None and len(due) > limit:
                raise CatchUpTooLong(
                    "start_date",
                    f"{self.start_date} would bill more than {limit} periods of {self.plan!r} at once; "
                    f"the bound is max_catch_up_periods = {limit}",
                )

    def next_bill_date(self, billed_until: date | None) -> date:
        """When the first period after ``billed_until`` falls due."""
        period = next(iter(self.cadence.periods(self.start_date, resume_at=billed_until)))
        return self.due_date(period)


@dataclass(frozen=True)
class ChargeLine:
    """One recurring line: a subscription's period and what it costs."""

    subscription_key: str
    plan: str
    period: BillingPeriod
    amount_minor: int
    position: int = 0


@dataclass(frozen=True)
class InvoiceDraft:
    issue_date: date
    charges: tuple[ChargeLine, ...]
    balance: tuple[Movement, ...] = ()

    @property
    def recurring_minor(self) -> int:
        return sum(line.amount_minor for line in self.charges)

    @property
    def subtotal_minor(self) -> int:
        return self.recurring_minor + sum(m.invoice_amount_minor for m in self.balance if m.invoice_amount_minor > 0)

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
        return self.recurring_minor + sum(m.invoice_amount_minor for m in self.balance)


@dataclass(frozen=True)
class Composition:
    """The invoices to issue now, the lapses they caused, and the state to store afterwards."""

    invoices: tuple[InvoiceDraft, ...]
    lapses: tuple[Movement, ...]
    billed_until: dict[str, date]
    next_bill_dates: dict[str, date]
    balance_left: tuple[OpenBalanceLine, ...]
    hold_until: date | None = None


def compose(
    subscriptions: Sequence[SubscriptionTerms],
    balance_lines: Sequence[OpenBalanceLine],
    as_of: date,
    *,
    combine: bool,
    onboarding: bool = False,
    hold_until: date | None = None,
    max_catch_up: int = DEFAULT_MAX_CATCH_UP_PERIODS,
) -> Composition:
    """The invoices an account gets on its local date ``as_of``.

    ``combine``: everything due goes on one invoice; otherwise one invoice per billing period
    (period start), and at onboarding only the earliest one is issued on ``as_of``: the rest wait
    for the first bill run on or after ``as_of`` + 1 day (Aria's scenario B). ``hold_until`` is
    that date, as stored after onboarding.
    """
    if hold_until is not None and as_of < hold_until:
        return _nothing(subscriptions, balance_lines, hold_until)
    limit = max_catch_up if onboarding else None
    charges = [
        ChargeLine(terms.key, terms.plan, period, charge(terms.amount_minor, period, terms.proration), terms.position)
        for terms in subscriptions
        for period in terms.due_periods(as_of, limit)
    ]
    charges.sort(key=lambda line: (line.period.start, line.position, line.subscription_key))
    groups = [charges] if combine else [list(group) for _, group in groupby(charges, key=lambda c: c.period.start)]
    groups = [group for group in groups if group]
    new_hold = as_of + timedelta(days=1) if onboarding and not combine and len(groups) > 1 else None
    if new_hold is not None:
        groups = groups[:1]

    invoices: list[InvoiceDraft] = []
    lapses: list[Movement] = []
    open_lines: Sequence[OpenBalanceLine] = balance_lines
    for group in groups:
        outcome = apply_balance(sum(line.amount_minor for line in group), open_lines, as_of)
        invoices.append(InvoiceDraft(as_of, tuple(group), outcome.applied))
        lapses.extend(outcome.lapsed)
        open_lines = outcome.remaining

    billed = {terms.key: terms.billed_until for terms in subscriptions}
    for invoice in invoices:
        for line in invoice.charges:
            billed[line.subscription_key] = line.period.end
    next_dates = {
        terms.key: max(terms.next_bill_date(billed[terms.key]), new_hold or date.min) for terms in subscriptions
    }
    return Composition(
        invoices=tuple(invoices),
        lapses=tuple(lapses),
        billed_until={key: end for key, end in billed.items() if end is not None},
        next_bill_dates=next_dates,
        balance_left=tuple(open_lines),
        hold_until=new_hold,
    )


def _nothing(
    subscriptions: Sequence[SubscriptionTerms], balance_lines: Sequence[OpenBalanceLine], hold_until: date
) -> Composition:
    return Composition(
        invoices=(),
        lapses=(),
        billed_until={terms.key: terms.billed_until for terms in subscriptions if terms.billed_until},
        next_bill_dates={
            terms.key: max(terms.next_bill_date(terms.billed_until), hold_until) for terms in subscriptions
        },
        balance_left=tuple(balance_lines),
        hold_until=hold_until,
    )


__all__ = [
    "DEFAULT_MAX_CATCH_UP_PERIODS",
    "ChargeLine",
    "Composition",
    "InvoiceDraft",
    "MovementKind",
    "SubscriptionTerms",
    "Timing",
    "compose",
]
