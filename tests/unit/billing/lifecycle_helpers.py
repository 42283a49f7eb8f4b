"""A day-by-day driver for lifecycle tests: what the shell would store between two ``compose`` calls.

``LifecycleAccount`` keeps each subscription's terms (timeline, schedule, watermark), every
recurring and proration line issued for it (fed back as billed ranges, as the shell would read
them from its invoice lines), the open balance lines, and turns each invoice's system credit into
a ``credit`` balance line, as the shell does with author ``system``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from models.billing.balance import BalanceKind, OpenBalanceLine
from models.billing.composition import (
    ChargeLine,
    Composition,
    InvoiceDraft,
    SubscriptionTerms,
    compose,
)
from models.billing.rating import LineKind

PrintedLine = tuple[str, str, date, date, int, int, int]
"""(kind, plan, first day, last day inclusive, days, period_days, amount) as an invoice prints a line."""


def printed(line: ChargeLine) -> PrintedLine:
    return (str(line.kind), line.plan, line.start, line.last_day, line.days, line.period_days, line.amount_minor)


def printed_invoices(invoices: Sequence[InvoiceDraft]) -> list[tuple[date, int, list[PrintedLine]]]:
    return [(i.issue_date, i.total_minor, [printed(c) for c in i.charges]) for i in invoices]


@dataclass
class LifecycleAccount:
    """One account's stored state; ``bill`` runs ``compose`` and stores what it returns."""

    subscriptions: dict[str, SubscriptionTerms]
    combine: bool
    balance: tuple[OpenBalanceLine, ...] = ()
    hold_until: date | None = None
    issued: dict[str, list[ChargeLine]] = field(default_factory=dict)
    history: list[Composition] = field(default_factory=list)
    next_sequence: int = 1000

    def update(self, key: str, change: Callable[[SubscriptionTerms], SubscriptionTerms]) -> None:
        self.subscriptions[key] = change(self.subscriptions[key])

    def add(self, terms: SubscriptionTerms) -> None:
        self.subscriptions[terms.key] = terms

    def bill(
        self,
        as_of: date,
        *,
        onboarding: bool = False,
        invoice_now: bool = False,
        catching_up: frozenset[str] = frozenset(),
    ) -> Composition:
        subs = [
            replace(t, billed=tuple(line.billed_range() for line in self.issued.get(t.key, ())),
                    catching_up=t.key in catching_up)
            for t in self.subscriptions.values()
        ]
        result = compose(subs, self.balance, as_of, combine=self.combine, onboarding=onboarding,
                         hold_until=self.hold_until, invoice_now=invoice_now)
        for key, terms in self.subscriptions.items():
            self.subscriptions[key] = replace(terms, billed_until=result.billed_until.get(key, terms.billed_until))
        for invoice in result.invoices:
            for line in invoice.charges:
                self.issued.setdefault(line.subscription_key, []).append(line)
        self.balance = result.balance_left
        for invoice in result.invoices:
            if invoice.system_credit_minor:
                self.next_sequence += 1
                self.balance = (*self.balance, OpenBalanceLine(
                    f"system-{self.next_sequence}", BalanceKind.CREDIT, self.next_sequence, as_of,
                    invoice.system_credit_minor))
        self.hold_until = result.hold_until
        self.history.append(result)
        return result

    @property
    def invoices(self) -> list[InvoiceDraft]:
        return [invoice for result in self.history for invoice in result.invoices]

    def lines_of(self, key: str, kind: LineKind | None = None) -> list[ChargeLine]:
        return [line for line in self.issued.get(key, ()) if kind is None or line.kind is kind]

    @property
    def credit_left(self) -> int:
        return sum(line.remaining_minor for line in self.balance if line.is_credit)


Event = Callable[[LifecycleAccount, date], None]
"""Something that happens to the account on a day, before that day's bill run."""


def run_days(
    account: LifecycleAccount,
    first: date,
    until: date,
    events: Mapping[date, Sequence[Event]] | None = None,
    *,
    onboard: bool = True,
) -> list[InvoiceDraft]:
    """Bill once a day from ``first`` to ``until`` (inclusive); ``events`` happen before that day's run.

    An event may bill the account itself (a handler that composes at once); the day's run follows.
    """
    events = events or {}
    day = first
    while day <= until:
        for event in events.get(day, ()):
            event(account, day)
        account.bill(day, onboarding=onboard and day == first)
        day += timedelta(days=1)
    return account.invoices
