"""What an account is due on a date: stored rows in, the pure core's composition out.

``compose_bill`` is pure once the rows are loaded: onboarding calls it for one account, a bill-run
batch for hundreds, and ``jobs.invoicing.write_bills`` stores the result either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Row

from jobs.settings import JobSettings
from models.billing.balance import OpenBalanceLine
from models.billing.composition import Composition, InvoiceDraft, compose
from models.tables.account import Account
from models.tables.mapping import SubscriptionRow, subscription_terms


@dataclass(frozen=True)
class SubscriptionState:
    """A subscription's stored watermark, as read before composing."""

    id: int
    billed_until: date | None
    next_bill_date: date | None


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
) -> AccountBill:
    """What the account is due on its local date ``as_of`` (pure once the rows are loaded)."""
    combine = settings.combine_invoices if account.combine_invoices is None else account.combine_invoices
    composition = compose(
        [subscription_terms(row) for row in subscriptions],
        balance,
        as_of,
        combine=combine,
        onboarding=onboarding,
        hold_until=account.hold_until,
        max_catch_up=settings.max_catch_up_periods,
    )
    return AccountBill(
        account_id=account.id,
        currency=account.currency,
        hold_until=account.hold_until,
        subscriptions=tuple(SubscriptionState(row.id, row.billed_until, row.next_bill_date) for row in subscriptions),
        line_ids={line.line_id: line.sequence for line in balance},
        composition=composition,
    )
