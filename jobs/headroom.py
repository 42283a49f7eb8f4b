"""Room left in 64 bits: a message that would make an invoice, a balance or a sum overflow is refused.

Every amount, sum and total fits a signed 64-bit integer of minor units (DESIGN §2). The core
refuses a sum that does not (``checked_sum``), but by then it is a bill run that fails, for ever,
for the account. So a message is judged when it arrives: the account's open balance (what its
lines have left, lines held for approval included), its recurring charges over the catch-up bound
and the new amount must still sum within ``MAX_MINOR``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.billing.errors import AmountOverflow
from models.billing.money import MAX_MINOR, checked_sum
from models.tables.balance_line import BalanceLine
from models.tables.mapping import open_balance_lines
from models.tables.subscription import Subscription


def _refuse(field: str) -> AmountOverflow:
    return AmountOverflow(field, f"would let the account's invoices or balance exceed the 64-bit limit of "
                                 f"{MAX_MINOR} minor units (its open balance, its recurring charges over the "
                                 f"catch-up bound and this amount together)")


def check_total(amounts: list[int], field: str) -> None:
    """Refuse (``AmountOverflow`` naming ``field``) when the magnitudes of ``amounts`` sum past 64 bits."""
    try:
        checked_sum((abs(amount) for amount in amounts), field)
    except AmountOverflow:
        raise _refuse(field) from None


def check_line(session: Session, account_id: str, amount_minor: int | None, currency: str, *,
               catch_up_periods: int) -> None:
    """Refuse a new line whose amount would not fit beside what the account already has."""
    if amount_minor is None:  # a percent discount only ever lowers an invoice
        return
    remaining = [line.remaining_minor for line in open_balance_lines(session, account_id)]
    held = session.scalars(select(BalanceLine.amount_minor).where(
        BalanceLine.account_id == account_id, BalanceLine.requires_approval.is_(True),
        BalanceLine.amount_minor.is_not(None))).all()
    prices = session.scalars(select(Subscription.amount_minor).where(Subscription.account_id == account_id)).all()
    check_total([amount_minor, *remaining, *(int(amount) for amount in held if amount is not None),
                 *(int(price) * catch_up_periods for price in prices)], "amount")


def check_onboarding(prices: list[int], line_amounts: list[int | None], *, catch_up_periods: int) -> None:
    """Refuse an onboarding whose prices over the catch-up bound and lines would not fit together."""
    check_total([*(price * catch_up_periods for price in prices), *(a for a in line_amounts if a is not None)],
                "subscriptions")
