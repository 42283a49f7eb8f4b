"""What an account is due on a date: stored rows in, the pure core's composition out.

``compose_bill`` is pure once the rows are loaded: onboarding calls it for one account, a bill-run
batch for hundreds, and ``jobs.invoicing.write_bills`` stores the result either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Row

from jobs.settings import JobSettings
from models.billing.balance import OpenBalanceLine
from models.billing.composition import Composition, InvoiceDraft, compose
from models.billing.rating import BilledRange
from models.tables.account import Account
from models.tables.mapping import ChangeRow, SubscriptionRow, subscription_terms


@dataclass(frozen=True)
class SubscriptionState:
    """A subscription's stored billing state, as read before composing."""

    id: int
    billed_until: date | None
    next_bill_date: date | None
    recheck_from: date | None = None
    settle_on: date | None = None


@dataclass(frozen=True)
class Lifecycle:
    """What a subscription's composition needs beyond its row: its changes and its billed ranges."""

    changes: Mapping[int, Sequence[ChangeRow]] = field(default_factory=dict)
    billed: Mapping[int, Sequence[BilledRange]] = field(default_factory=dict)
    catching_up: frozenset[int] = frozenset()
    """Subscriptions just added with a past start (their catch-up follows the account's grouping)."""


NO_LIFECYCLE = Lifecycle()


@dataclass(frozen=True)
class AccountBill:
    """One account's composition and what the writer needs to store it; no database handle."""

    account_id: str
    currency: str
    hold_until: date | None
    subscriptions: tuple[SubscriptionState, ...]
    line_ids: dict[str, int]
    composition: Composition

    @property
    def invoices(self) -> tuple[InvoiceDraft, ...]:
        return self.composition.invoices


AccountRow = Account | Row[Any]
"""An account as a mapped object (onboarding has just created it) or a Core row (bill runs)."""


def compose_bill(
    account: AccountRow,
    subscriptions: Sequence[SubscriptionRow],
    balance: Sequence[OpenBalanceLine],
    as_of: date,
    *,
    settings: JobSettings,
    onboarding: bool = False,
    lifecycle: Lifecycle = NO_LIFECYCLE,
    invoice_now: bool = False,
) -> AccountBill:
    """What the account is due on its local date ``as_of`` (pure once the rows are loaded)."""
    combine = settings.combine_invoices if account.combine_invoices is None else account.combine_invoices
    terms = [
        subscription_terms(row, lifecycle.changes.get(row.id, ()), lifecycle.billed.get(row.id, ()),
                           catching_up=row.id in lifecycle.catching_up)
        for row in subscriptions
    ]
    composition = compose(
        terms,
        balance,
        as_of,
        combine=combine,
        onboarding=onboarding,
        hold_until=account.hold_until,
        max_catch_up=settings.max_catch_up_periods,
        invoice_now=invoice_now,
    )
    return AccountBill(
        account_id=account.id,
        currency=account.currency,
        hold_until=account.hold_until,
        subscriptions=tuple(
            SubscriptionState(row.id, row.billed_until, row.next_bill_date, getattr(row, "recheck_from", None),
                              getattr(row, "settle_on", None))
            for row in subscriptions
        ),
        line_ids={line.line_id: line.sequence for line in balance},
        composition=composition,
    )
