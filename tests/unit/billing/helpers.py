"""Builders and a day-by-day driver for the billing core tests (pure: no clock, no I/O).

``Account`` keeps what the shell would store between two calls of ``compose``: each
subscription's ``billed_until``, the open balance lines and ``hold_until``. ``run_daily`` calls
``compose`` once per local date, as the hourly bill run does, feeding each call's output into
the next one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from models.billing.balance import BalanceKind, OpenBalanceLine
from models.billing.calendar import BillingPeriod, Cadence, IntervalUnit
from models.billing.composition import (
    DEFAULT_MAX_CATCH_UP_PERIODS,
    Composition,
    InvoiceDraft,
    SubscriptionTerms,
    Timing,
    compose,
)
from models.billing.proration import Proration

Line = tuple[date, date, int]
"""A recurring line as an invoice prints it: (first day, last day inclusive, amount in minor units)."""

InvoiceSummary = tuple[date, list[Line]]


def d(text: str) -> date:
    """``date`` from ISO text, to keep tables short."""
    return date.fromisoformat(text)


def period(start: str, end_exclusive: str, cycle_start: str | None = None) -> BillingPeriod:
    return BillingPeriod(d(start), d(end_exclusive), d(cycle_start or start))


def monthly(bill_day: int, count: int = 1, bill_month: int | None = None) -> Cadence:
    return Cadence(IntervalUnit.MONTH, count, bill_day, bill_month=bill_month)


def terms(
    start: str,
    cadence: Cadence,
    amount_minor: int = 3000,
    *,
    key: str = "sub-1",
    plan: str = "pro-monthly",
    timing: Timing = Timing.ADVANCE,
    proration: Proration = Proration.DAILY,
    position: int = 0,
    billed_until: date | None = None,
) -> SubscriptionTerms:
    return SubscriptionTerms(
        key=key,
        plan=plan,
        amount_minor=amount_minor,
        cadence=cadence,
        start_date=d(start),
        timing=timing,
        proration=proration,
        billed_until=billed_until,
        position=position,
    )


def credit(
    line_id: str,
    amount_minor: int,
    sequence: int,
    effective: str = "2000-01-01",
    *,
    expires_on: str | None = None,
    kind: BalanceKind = BalanceKind.CREDIT,
) -> OpenBalanceLine:
    return OpenBalanceLine(
        line_id=line_id,
        kind=kind,
        sequence=sequence,
        effective_date=d(effective),
        remaining_minor=amount_minor,
        expires_on=d(expires_on) if expires_on else None,
    )


def summarize(invoices: Sequence[InvoiceDraft]) -> list[InvoiceSummary]:
    return [
        (invoice.issue_date, [(c.period.start, c.period.last_day, c.amount_minor) for c in invoice.charges])
        for invoice in invoices
    ]


@dataclass
class Account:
    """The state the shell stores for one account between two bill runs."""

    subscriptions: list[SubscriptionTerms]
    combine: bool
    balance: tuple[OpenBalanceLine, ...] = ()
    hold_until: date | None = None
    max_catch_up: int = DEFAULT_MAX_CATCH_UP_PERIODS
    history: list[Composition] = field(default_factory=list)

    def bill(self, as_of: date, *, onboarding: bool = False) -> Composition:
        result = compose(
            self.subscriptions,
            self.balance,
            as_of,
            combine=self.combine,
            onboarding=onboarding,
            hold_until=self.hold_until,
            max_catch_up=self.max_catch_up,
        )
        self.subscriptions = [
            replace(sub, billed_until=result.billed_until.get(sub.key, sub.billed_until))
            for sub in self.subscriptions
        ]
        self.balance = result.balance_left
        self.hold_until = result.hold_until
        self.history.append(result)
        return result

    @property
    def invoices(self) -> list[InvoiceDraft]:
        return [invoice for result in self.history for invoice in result.invoices]


def run_daily(
    account: Account,
    onboard_on: date,
    until: date,
    arrivals: Mapping[date, Sequence[OpenBalanceLine]] | None = None,
) -> list[InvoiceDraft]:
    """Onboard on ``onboard_on``, then run the bill once a day up to ``until`` (inclusive).

    Balance lines in ``arrivals`` are recorded on their date before that day's bill run.
    """
    arrivals = arrivals or {}
    day = onboard_on
    while day <= until:
        account.balance = (*account.balance, *arrivals.get(day, ()))
        account.bill(day, onboarding=day == onboard_on)
        day += timedelta(days=1)
    return account.invoices
