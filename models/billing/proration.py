"""What a period costs: full periods the whole price, stubs by the subscription's policy."""

from __future__ import annotations

from enum import StrEnum
from fractions import Fraction

from models.billing.calendar import BillingPeriod
from models.billing.money import round_half_up


class Proration(StrEnum):
    DAILY = "daily"
    """price x stub days / days of the aligned cycle that contains the stub (Kill Bill, Aria)."""
    FULL = "full"
    """A stub costs the whole price."""
    NONE = "none"
    """A stub is free."""


def period_fraction(period: BillingPeriod, policy: Proration) -> Fraction:
    """The exact share of the price that ``period`` costs under ``policy``."""
    policy = Proration(policy)
    if not period.is_stub or policy is Proration.FULL:
        return Fraction(1)
    if policy is Proration.NONE:
        return Fraction(0)
    return Fraction(period.days, period.cycle_days)


def charge(amount_minor: int, period: BillingPeriod, policy: Proration) -> int:
    """The period's charge in minor units, rounded once, half-up."""
    return round_half_up(amount_minor * period_fraction(period, policy))
