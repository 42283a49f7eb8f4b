"""Applying a customer's balance lines to an invoice.

Order on each invoice: recurring lines and positive adjustments make the subtotal; discounts
(percent of the recurring lines, each rounded half-up, then fixed ones) are capped at the
subtotal; credits (soonest-expiring first, otherwise oldest first) are capped at what is still
due. Nothing takes the total below zero; unused credit carries forward; expired credit and the
unusable part of a discount lapse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from fractions import Fraction

from models.billing.money import round_half_up


class BalanceKind(StrEnum):
    CREDIT = "credit"
    GIFT = "gift"
    REFERRAL = "referral"
    DISCOUNT = "discount"
    ADJUSTMENT = "adjustment"


BALANCE_KINDS: tuple[str, ...] = tuple(kind.value for kind in BalanceKind)
"""Every kind, as the strings messages, configuration and tables use."""
CREDIT_KINDS = frozenset({BalanceKind.CREDIT, BalanceKind.GIFT, BalanceKind.REFERRAL})
"""Kinds that are customer credit: usable until spent or until ``expires_on``."""


@dataclass(frozen=True)
class OpenBalanceLine:
    """A balance line with something left to apply.

    ``remaining_minor`` is signed like the line: positive for credits, gifts, referrals and fixed
    discounts (the amount still usable), signed for adjustments (negative = a credit, positive =
    a charge). A percent discount carries ``percent`` instead (0 < percent <= 100).
    ``sequence`` orders lines by arrival: oldest first.
    """

    line_id: str
    kind: BalanceKind
    sequence: int
    effective_date: date
    remaining_minor: int = 0
    percent: Fraction | None = None
    expires_on: date | None = None

    @property
    def is_credit(self) -> bool:
        return self.kind in CREDIT_KINDS or (
            self.kind is BalanceKind.ADJUSTMENT and self.remaining_minor < 0
        )

    @property
    def is_charge(self) -> bool:
        return self.kind is BalanceKind.ADJUSTMENT and self.remaining_minor > 0


class MovementKind(StrEnum):
    APPLIED = "applied"
    LAPSED = "lapsed"


@dataclass(frozen=True)
class Movement:
    """What an invoice did to a balance line.

    ``invoice_amount_minor`` is the signed invoice line (a credit of 5.00 is -500, a positive
    adjustment +500; 0 for a lapse); ``consumed_minor`` is the non-negative amount used up.
    """

    line_id: str
    kind: BalanceKind
    movement: MovementKind
    invoice_amount_minor: int
    consumed_minor: int


@dataclass(frozen=True)
class BalanceOutcome:
    movements: tuple[Movement, ...]
    remaining: tuple[OpenBalanceLine, ...]

    @property
    def applied(self) -> tuple[Movement, ...]:
        return tuple(m for m in self.movements if m.movement is MovementKind.APPLIED)

    @property
    def lapsed(self) -> tuple[Movement, ...]:
        return tuple(m for m in self.movements if m.movement is MovementKind.LAPSED)


def _credit_order(line: OpenBalanceLine) -> tuple[bool, date, int]:
    return (line.expires_on is None, line.expires_on or date.max, line.sequence)


def apply_balance(
    recurring_minor: int,
    lines: Sequence[OpenBalanceLine],
    issue_date: date,
    *,
    proration_minor: int = 0,
    with_discounts: bool = True,
) -> BalanceOutcome:
    """Apply what is open in ``lines`` to an invoice whose recurring lines sum to ``recurring_minor``.

    ``proration_minor`` is the sum of the invoice's proration lines (DESIGN §2b): discounts apply to
    the recurring lines only, and are capped so that a negative proration cannot turn them into
    credit; credits then pay what is still due after the proration. The caller never passes an
    invoice whose lines sum below zero (that one is issued at 0 and makes system credit).
    ``with_discounts=False`` (an invoice without recurring lines) leaves discounts for a later one.
    """
    movements: list[Movement] = []
    left: dict[str, OpenBalanceLine] = {line.line_id: line for line in lines}

    def record(line: OpenBalanceLine, movement: MovementKind, invoice_amount: int, consumed: int) -> None:
        movements.append(Movement(line.line_id, line.kind, movement, invoice_amount, consumed))

    for line in sorted(lines, key=lambda item: item.sequence):
        if line.is_credit and line.expires_on is not None and line.expires_on < issue_date:
            record(line, MovementKind.LAPSED, 0, abs(line.remaining_minor))
            del left[line.line_id]
    usable = [line for line in left.values() if line.effective_date <= issue_date]

    subtotal = recurring_minor
    for line in sorted((item for item in usable if item.is_charge), key=lambda item: item.sequence):
        record(line, MovementKind.APPLIED, line.remaining_minor, line.remaining_minor)
        subtotal += line.remaining_minor
        del left[line.line_id]

    due = max(0, subtotal + min(proration_minor, 0))  # what discounts may take
    discounts = [item for item in usable if item.kind is BalanceKind.DISCOUNT and with_discounts]
    for line in sorted(discounts, key=lambda item: (item.percent is None, item.sequence)):
        if line.percent is not None:
            wanted = round_half_up(recurring_minor * line.percent / 100)
        else:
            wanted = line.remaining_minor
        used = min(wanted, due)
        due -= used
        subtotal -= used
        if used:
            record(line, MovementKind.APPLIED, -used, used)
        if line.percent is None and wanted > used:
            record(line, MovementKind.LAPSED, 0, wanted - used)
        elif line.percent is not None and not used:
            record(line, MovementKind.LAPSED, 0, 0)
        del left[line.line_id]

    due = max(0, subtotal + proration_minor)
    for line in sorted((item for item in usable if item.is_credit), key=_credit_order):
        if due == 0:
            break
        available = abs(line.remaining_minor)
        used = min(available, due)
        due -= used
        record(line, MovementKind.APPLIED, -used, used)
        if used == available:
            del left[line.line_id]
        else:
            sign = -1 if line.remaining_minor < 0 else 1
            left[line.line_id] = replace(line, remaining_minor=sign * (available - used))

    return BalanceOutcome(tuple(movements), tuple(left.values()))


def remaining_credit(lines: Sequence[OpenBalanceLine], as_of: date) -> int:
    """Unused customer credit still usable on ``as_of`` (expired credit is not counted)."""
    return sum(
        abs(line.remaining_minor)
        for line in lines
        if line.is_credit and (line.expires_on is None or line.expires_on >= as_of)
    )
