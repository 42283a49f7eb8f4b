"""Balance lines on one invoice: charges, then discounts (percent, then fixed), then credits.

Rows read: recurring lines of the invoice, the open lines, the issue date -> the invoice lines
(signed: a credit of 5.00 is -500), what each line consumed, and what is left open afterwards.
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from models.billing.balance import (
    BalanceKind,
    BalanceOutcome,
    MovementKind,
    OpenBalanceLine,
    apply_balance,
)
from tests.unit.billing.helpers import credit, d

APPLIED, LAPSED = MovementKind.APPLIED, MovementKind.LAPSED
ISSUE = "2018-11-30"

MovementRow = tuple[str, MovementKind, int, int]
"""(line_id, applied/lapsed, signed invoice amount, consumed)."""


def rows(outcome: BalanceOutcome) -> list[MovementRow]:
    return [(m.line_id, m.movement, m.invoice_amount_minor, m.consumed_minor) for m in outcome.movements]


def left(outcome: BalanceOutcome) -> dict[str, int]:
    return {line.line_id: line.remaining_minor for line in outcome.remaining}


def total(recurring: int, outcome: BalanceOutcome) -> int:
    return recurring + sum(m.invoice_amount_minor for m in outcome.movements)


def percent(
    line_id: str, value: Fraction | int, sequence: int, effective: str = "2000-01-01"
) -> OpenBalanceLine:
    return OpenBalanceLine(line_id, BalanceKind.DISCOUNT, sequence, d(effective), percent=Fraction(value))


def fixed(line_id: str, amount: int, sequence: int, effective: str = "2000-01-01") -> OpenBalanceLine:
    return OpenBalanceLine(line_id, BalanceKind.DISCOUNT, sequence, d(effective), remaining_minor=amount)


def adjustment(line_id: str, amount: int, sequence: int, effective: str = "2000-01-01") -> OpenBalanceLine:
    return OpenBalanceLine(line_id, BalanceKind.ADJUSTMENT, sequence, d(effective), remaining_minor=amount)


@pytest.mark.parametrize(
    ("recurring", "lines", "issue", "movements", "remaining", "invoice_total"),
    [
        # no balance lines: the invoice is its recurring lines
        (7000, [], ISSUE, [], {}, 7000),
        # a credit smaller than the invoice: used up; 70.00 - 5.00 = 65.00
        (7000, [credit("c1", 500, 1)], ISSUE, [("c1", APPLIED, -500, 500)], {}, 6500),
        # a credit equal to the invoice: 30.00 - 30.00 = 0.00, nothing left
        (3000, [credit("c1", 3000, 1)], ISSUE, [("c1", APPLIED, -3000, 3000)], {}, 0),
        # a credit larger than the invoice: capped at 30.00, 100.00 - 30.00 = 70.00 carried forward
        (3000, [credit("c1", 10000, 1)], ISSUE, [("c1", APPLIED, -3000, 3000)], {"c1": 7000}, 0),
        # gift and referral are customer credit too
        (3000,
         [credit("g1", 1000, 1, kind=BalanceKind.GIFT), credit("r1", 500, 2, kind=BalanceKind.REFERRAL)],
         ISSUE, [("g1", APPLIED, -1000, 1000), ("r1", APPLIED, -500, 500)], {}, 1500),  # 30 - 10 - 5
        # expires today: still usable on its expires_on day
        (3000, [credit("c1", 500, 1, expires_on=ISSUE)], ISSUE, [("c1", APPLIED, -500, 500)], {}, 2500),
        # expired yesterday: the whole 5.00 lapses, the invoice stays 30.00
        (3000, [credit("c1", 500, 1, expires_on="2018-11-29")], ISSUE, [("c1", LAPSED, 0, 500)], {}, 3000),
        # effective tomorrow: not applied yet, kept open, untouched
        (3000, [credit("c1", 500, 1, effective="2018-12-01")], ISSUE, [], {"c1": 500}, 3000),
        # effective today: applies
        (3000, [credit("c1", 500, 1, effective=ISSUE)], ISSUE, [("c1", APPLIED, -500, 500)], {}, 2500),
        # credits: soonest-expiring first (c2 expires Dec 1), then the other dated one, then undated by age
        (3000,
         [credit("c1", 1000, 1), credit("c2", 1000, 2, expires_on="2018-12-01"),
          credit("c3", 1500, 3, expires_on="2019-06-01")],
         ISSUE, [("c2", APPLIED, -1000, 1000), ("c3", APPLIED, -1500, 1500), ("c1", APPLIED, -500, 500)],
         {"c1": 500}, 0),  # 30.00 - 10.00 - 15.00 - 5.00 (of c1's 10.00) = 0; c1 keeps 5.00
        # credits without expiry: oldest first (sequence 1 before 2, whatever their list order)
        (3000, [credit("new", 2000, 2), credit("old", 2000, 1)], ISSUE,
         [("old", APPLIED, -2000, 2000), ("new", APPLIED, -1000, 1000)], {"new": 1000}, 0),
        # same expiry: oldest first
        (1000, [credit("b", 1000, 5, expires_on="2019-01-01"), credit("a", 1000, 4, expires_on="2019-01-01")],
         ISSUE, [("a", APPLIED, -1000, 1000)], {"b": 1000}, 0),
        # percent discount: 10% of 70.00 = 7.00
        (7000, [percent("p10", 10, 1)], ISSUE, [("p10", APPLIED, -700, 700)], {}, 6300),
        # percent discount rounded half-up: 10% of 0.05 = 0.005 -> 0.01
        (5, [percent("p10", 10, 1)], ISSUE, [("p10", APPLIED, -1, 1)], {}, 4),
        # 12.5% of 25.00 = 3.125 -> 3.13 (half-up, one rounding)
        (2500, [percent("p", Fraction(25, 2), 1)], ISSUE, [("p", APPLIED, -313, 313)], {}, 2187),
        # 10% of 25.01 = 2.501 -> 2.50
        (2501, [percent("p10", 10, 1)], ISSUE, [("p10", APPLIED, -250, 250)], {}, 2251),
        # 100% discount: the invoice is free
        (3000, [percent("p", 100, 1)], ISSUE, [("p", APPLIED, -3000, 3000)], {}, 0),
        # percent discount effective tomorrow: waits
        (3000, [percent("p", 10, 1, effective="2018-12-01")], ISSUE, [], {"p": 0}, 3000),
        # fixed discount smaller than the subtotal: used, gone (one invoice only)
        (3000, [fixed("f", 500, 1)], ISSUE, [("f", APPLIED, -500, 500)], {}, 2500),
        # fixed discount larger than the subtotal: capped at 30.00; 50.00 - 30.00 = 20.00 lapses
        (3000, [fixed("f", 5000, 1)], ISSUE, [("f", APPLIED, -3000, 3000), ("f", LAPSED, 0, 2000)], {}, 0),
        # percent before fixed, even when the fixed one is older: 10% of 100.00 = 10.00, then 95.00 capped
        # at the 90.00 still due; 5.00 lapses
        (10000, [fixed("f", 9500, 1), percent("p", 10, 2)], ISSUE,
         [("p", APPLIED, -1000, 1000), ("f", APPLIED, -9000, 9000), ("f", LAPSED, 0, 500)], {}, 0),
        # discounts before credits: 30.00 - 10% (3.00) - 5.00 fixed = 22.00 due; credit 25.00 pays 22.00
        (3000, [credit("c", 2500, 1), fixed("f", 500, 2), percent("p", 10, 3)], ISSUE,
         [("p", APPLIED, -300, 300), ("f", APPLIED, -500, 500), ("c", APPLIED, -2200, 2200)], {"c": 300}, 0),
        # a positive adjustment is a charge line: subtotal 30.00 + 12.00 = 42.00
        (3000, [adjustment("a+", 1200, 1)], ISSUE, [("a+", APPLIED, 1200, 1200)], {}, 4200),
        # percent discounts apply to the recurring lines only: 10% of 30.00 = 3.00, not of 42.00
        (3000, [adjustment("a+", 1200, 1), percent("p", 10, 2)], ISSUE,
         [("a+", APPLIED, 1200, 1200), ("p", APPLIED, -300, 300)], {}, 3900),  # 30 + 12 - 3
        # a fixed discount is capped at the subtotal, which includes the positive adjustment: 30 + 12 = 42
        (3000, [adjustment("a+", 1200, 1), fixed("f", 5000, 2)], ISSUE,
         [("a+", APPLIED, 1200, 1200), ("f", APPLIED, -4200, 4200), ("f", LAPSED, 0, 800)], {}, 0),
        # credits pay the positive adjustment too: 30.00 + 12.00 - 45.00 credit -> 0, 3.00 carried forward
        (3000, [adjustment("a+", 1200, 1), credit("c", 4500, 2)], ISSUE,
         [("a+", APPLIED, 1200, 1200), ("c", APPLIED, -4200, 4200)], {"c": 300}, 0),
        # a negative adjustment is a credit: 30.00 - 12.00 = 18.00
        (3000, [adjustment("a-", -1200, 1)], ISSUE, [("a-", APPLIED, -1200, 1200)], {}, 1800),
        # a negative adjustment larger than the invoice: -50.00 pays 30.00, -20.00 stays open (still negative)
        (3000, [adjustment("a-", -5000, 1)], ISSUE, [("a-", APPLIED, -3000, 3000)], {"a-": -2000}, 0),
        # a negative adjustment orders with the credits: no expiry, so after the dated credit
        (3000, [adjustment("a-", -2000, 1), credit("c", 2000, 2, expires_on="2019-01-01")], ISSUE,
         [("c", APPLIED, -2000, 2000), ("a-", APPLIED, -1000, 1000)], {"a-": -1000}, 0),
        # a positive adjustment effective tomorrow waits, like every line
        (3000, [adjustment("a+", 1200, 1, effective="2018-12-01")], ISSUE, [], {"a+": 1200}, 3000),
        # an expired credit lapses even when it is not effective yet
        (3000, [credit("c", 500, 1, effective="2018-12-01", expires_on="2018-11-29")], ISSUE,
         [("c", LAPSED, 0, 500)], {}, 3000),
        # lapses come first, then the usable credit pays
        (3000, [credit("old", 500, 1, expires_on="2018-11-01"), credit("ok", 500, 2)], ISSUE,
         [("old", LAPSED, 0, 500), ("ok", APPLIED, -500, 500)], {}, 2500),
        # a zero invoice (a free stub): the fixed discount cannot be used and lapses; credit carries forward
        (0, [fixed("f", 500, 1), credit("c", 500, 2)], ISSUE, [("f", LAPSED, 0, 500)], {"c": 500}, 0),
        # a zero invoice: a percent discount is spent with nothing to take (lapse of 0)
        (0, [percent("p", 10, 1)], ISSUE, [("p", LAPSED, 0, 0)], {}, 0),
    ],
)
def test_apply_balance(
    recurring: int,
    lines: list[OpenBalanceLine],
    issue: str,
    movements: list[MovementRow],
    remaining: dict[str, int],
    invoice_total: int,
) -> None:
    outcome = apply_balance(recurring, lines, d(issue))
    assert rows(outcome) == movements
    assert left(outcome) == remaining
    assert total(recurring, outcome) == invoice_total
    assert total(recurring, outcome) >= 0


def test_a_partially_used_credit_keeps_its_identity_and_dates() -> None:
    line = credit("c1", 10000, 7, "2018-11-01", expires_on="2019-03-31")
    (kept,) = apply_balance(3000, [line], d(ISSUE)).remaining
    assert kept == OpenBalanceLine("c1", BalanceKind.CREDIT, 7, d("2018-11-01"), 7000, None, d("2019-03-31"))


def test_credit_carries_forward_across_invoices_until_used_up() -> None:
    # 100.00 credit against three 30.00 invoices: 30 + 30 + 30, then 10.00 against the fourth
    lines: tuple[OpenBalanceLine, ...] = (credit("c1", 10000, 1),)
    totals = []
    for issue in ("2018-11-30", "2018-12-15", "2019-01-15", "2019-02-15"):
        outcome = apply_balance(3000, lines, d(issue))
        totals.append(total(3000, outcome))
        lines = outcome.remaining
    assert totals == [0, 0, 0, 2000]  # 30 - 30, 30 - 30, 30 - 30, 30 - 10
    assert lines == ()


def test_an_expiring_credit_is_usable_on_its_last_day_and_lapses_the_day_after() -> None:
    line = credit("c1", 10000, 1, expires_on="2018-12-15")
    on_the_day = apply_balance(3000, [line], date(2018, 12, 15))
    assert rows(on_the_day) == [("c1", APPLIED, -3000, 3000)]  # 100.00 - 30.00 = 70.00 left
    the_day_after = apply_balance(3000, on_the_day.remaining, date(2018, 12, 16))
    assert rows(the_day_after) == [("c1", LAPSED, 0, 7000)]  # the 70.00 left lapses
    assert the_day_after.remaining == ()
    assert the_day_after.lapsed == the_day_after.movements
    assert the_day_after.applied == ()


def test_a_discount_applies_to_the_next_invoice_only() -> None:
    first = apply_balance(3000, [percent("p", 50, 1)], d("2018-12-15"))
    second = apply_balance(3000, first.remaining, d("2019-01-15"))
    assert (total(3000, first), total(3000, second)) == (1500, 3000)  # 30 - 50% = 15, then 30


def test_the_input_lines_are_not_changed() -> None:
    lines = (credit("c1", 10000, 1),)
    apply_balance(3000, lines, d(ISSUE))
    assert lines[0].remaining_minor == 10000


@pytest.mark.parametrize(
    ("line", "is_credit", "is_charge"),
    [
        (credit("c", 1, 1), True, False),
        (credit("g", 1, 1, kind=BalanceKind.GIFT), True, False),
        (credit("r", 1, 1, kind=BalanceKind.REFERRAL), True, False),
        (adjustment("a-", -1, 1), True, False),  # a negative adjustment behaves as a credit
        (adjustment("a+", 1, 1), False, True),  # a positive adjustment is a charge
        (fixed("f", 1, 1), False, False),  # a discount is neither
        (percent("p", 1, 1), False, False),
    ],
)
def test_line_kinds(line: OpenBalanceLine, is_credit: bool, is_charge: bool) -> None:
    assert (line.is_credit, line.is_charge) == (is_credit, is_charge)
