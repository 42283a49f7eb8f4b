"""What a period costs: a full period the whole price; a stub by the subscription's policy, rounded once."""

from __future__ import annotations

from fractions import Fraction
from itertools import islice

import pytest

from models.billing.calendar import BillingPeriod, Cadence, IntervalUnit
from models.billing.proration import Proration, charge, period_fraction
from tests.unit.billing.helpers import d, monthly
from tests.unit.billing.helpers import period as span

DAILY, FULL, NONE = Proration.DAILY, Proration.FULL, Proration.NONE

ARIA_STUB = span("2018-10-05", "2018-10-15", "2018-09-15")  # 10 days of the 30-day cycle Sep 15..Oct 14
ARIA_FULL = span("2018-10-15", "2018-11-15")  # 31 days, not a stub
FEB_2023_FULL = span("2023-02-28", "2023-03-28")  # 28 days, not a stub


@pytest.mark.parametrize(
    ("billing_period", "policy", "fraction"),
    [
        (ARIA_STUB, DAILY, Fraction(10, 30)),  # 10 stub days / 30 cycle days
        (ARIA_STUB, FULL, Fraction(1)),  # the whole price
        (ARIA_STUB, NONE, Fraction(0)),  # free
        (ARIA_FULL, DAILY, Fraction(1)),  # full periods cost the whole price whatever their length
        (ARIA_FULL, FULL, Fraction(1)),
        (ARIA_FULL, NONE, Fraction(1)),  # "none" only frees the stub
        (FEB_2023_FULL, DAILY, Fraction(1)),  # a 28-day period is still a whole period
    ],
)
def test_period_fraction(billing_period: BillingPeriod, policy: Proration, fraction: Fraction) -> None:
    assert period_fraction(billing_period, policy) == fraction


@pytest.mark.parametrize(
    ("amount_minor", "billing_period", "policy", "expected"),
    [
        # the seed: 30.00 USD x 10/30 = 10.00
        (3000, ARIA_STUB, DAILY, 1000),
        # Stripe's backdating would give 10/31 = 9.68; ours is the aligned cycle: 10/30
        (3100, ARIA_STUB, DAILY, 1033),  # 31.00 x 10/30 = 10.333.. -> 10.33
        (3000, ARIA_STUB, FULL, 3000),  # full policy: 30.00
        (3000, ARIA_STUB, NONE, 0),  # none policy: free
        (3000, ARIA_FULL, NONE, 3000),  # a full period is never free
        # bill days 28..31 in February (stub Feb 10..anchor; see test_calendar for the day counts)
        (3000, span("2023-02-10", "2023-02-28", "2023-01-28"), DAILY, 1742),  # 3000 x 18/31 = 1741.93 -> 1742
        (3000, span("2023-02-10", "2023-02-28", "2023-01-29"), DAILY, 1800),  # 3000 x 18/30 = 1800
        (3000, span("2023-02-10", "2023-02-28", "2023-01-30"), DAILY, 1862),  # 3000 x 18/29 = 1862.07 -> 1862
        (3000, span("2023-02-10", "2023-02-28", "2023-01-31"), DAILY, 1929),  # 3000 x 18/28 = 1928.57 -> 1929
        (3000, span("2024-02-10", "2024-02-28", "2024-01-28"), DAILY, 1742),  # 3000 x 18/31 = 1741.93 -> 1742
        (3000, span("2024-02-10", "2024-02-29", "2024-01-29"), DAILY, 1839),  # 3000 x 19/31 = 1838.71 -> 1839
        (3000, span("2024-02-10", "2024-02-29", "2024-01-30"), DAILY, 1900),  # 3000 x 19/30 = 1900
        (3000, span("2024-02-10", "2024-02-29", "2024-01-31"), DAILY, 1966),  # 3000 x 19/29 = 1965.52 -> 1966
        # the acceptance case: B=31 from Jan 10 2023, 31.00 x 21/31 = 21.00
        (3100, span("2023-01-10", "2023-01-31", "2022-12-31"), DAILY, 2100),
        # JPY (0 decimals): rounded to whole yen, half up
        (1000, ARIA_STUB, DAILY, 333),  # 1000 x 10/30 = 333.33 -> 333
        (2000, ARIA_STUB, DAILY, 667),  # 2000 x 10/30 = 666.67 -> 667
        (15, span("2018-10-14", "2018-10-15", "2018-09-15"), DAILY, 1),  # 15 x 1/30 = 0.5 -> 1 (tie, up)
        (45, span("2018-10-14", "2018-10-15", "2018-09-15"), DAILY, 2),  # 45 x 1/30 = 1.5 -> 2 (tie)
        (75, span("2018-10-14", "2018-10-15", "2018-09-15"), DAILY, 3),  # 75 x 1/30 = 2.5 -> 3 (banker's: 2)
        (3450, span("2024-02-10", "2024-02-29", "2024-01-31"), DAILY, 2260),  # 3450 x 19/29 = 2260.34 -> 2260
        # KWD (3 decimals): rounded to the fils, half up
        (1001, span("2018-10-01", "2018-10-16", "2018-09-16"), DAILY, 501),  # 1.001 x 15/30 = 0.5005 -> 0.501
        (5, span("2018-10-12", "2018-10-15", "2018-09-15"), DAILY, 1),  # 0.005 x 3/30 = 0.0005 -> 0.001 (tie)
        (12345, ARIA_STUB, DAILY, 4115),  # 12.345 x 10/30 = 4.115 exactly
        (12346, ARIA_STUB, DAILY, 4115),  # 12.346 x 10/30 = 4.11533 -> 4.115
        (12347, ARIA_STUB, DAILY, 4116),  # 12.347 x 10/30 = 4.11567 -> 4.116
        # weeks and years
        (7000, span("2023-03-01", "2023-03-06", "2023-02-27"), DAILY, 5000),  # 70.00 x 5/7 = 50.00
        (999, span("2023-03-01", "2023-03-03", "2023-02-17"), DAILY, 143),  # 9.99 x 2/14 = 1.427 -> 1.43
        (36500, span("2023-03-10", "2024-01-01", "2023-01-01"), DAILY, 29700),  # 365.00 x 297/365 = 297.00
        (100, span("2023-12-31", "2024-01-01", "2023-01-01"), DAILY, 0),  # 1.00 x 1/365 = 0.0027 -> 0.00
    ],
)
def test_charge(amount_minor: int, billing_period: BillingPeriod, policy: Proration, expected: int) -> None:
    assert charge(amount_minor, billing_period, policy) == expected


def test_full_periods_cost_the_same_whatever_their_length() -> None:
    # B = 31 from Jan 31 2023: 28, 31, 30, 31 days; each costs the price
    periods = list(islice(monthly(31).periods(d("2023-01-31")), 4))
    assert [p.days for p in periods] == [28, 31, 30, 31]
    assert {charge(3000, p, DAILY) for p in periods} == {3000}


def test_a_weekly_stub_is_charged_by_the_days_of_its_own_cycle() -> None:
    # every 2 weeks on Fridays from Wednesday Mar 1 2023: stub Mar 1..2 = 2 of 14 days
    stub = next(iter(Cadence(IntervalUnit.WEEK, 2, 1, bill_weekday=5).periods(d("2023-03-01"))))
    assert charge(1400, stub, DAILY) == 200  # 14.00 x 2/14 = 2.00


@pytest.mark.parametrize(("policy", "expected"), [("none", 0), ("full", 3000)])
def test_a_plain_string_policy_is_refused_or_understood(policy: str, expected: int) -> None:
    # Expected: the policy's charge (or a refusal). Got: 1000, the daily charge 30.00 x 10/30.
    assert charge(3000, ARIA_STUB, policy) == expected  # type: ignore[arg-type]
