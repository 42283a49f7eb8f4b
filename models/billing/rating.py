"""What a period should be billed, and the corrections against what it was billed (DESIGN §2b).

A period P = [p, q) is billed from a price timeline as one ``recurring`` line per maximal range
of constant non-zero price, each ``price x d / n`` rounded once, half-up. What was billed is
read back from the invoice lines as signed rates over ranges (``BilledRange``): recurring lines
+rate, proration lines -old rate / +new rate. Every maximal range whose billed (plan, price)
differs from the timeline's gets ``-billed x d / n`` and ``+timeline x d / n``; fed back, those
lines make the billed rates equal the timeline's, so a rerun finds nothing (Kill Bill's
"what should be billed - what was billed").

The weight of a range of d days in P follows the subscription's stub policy:
- ``daily`` and any full period: d / n, n = P's cycle (for a stub, its full cycle, as in §2);
- ``full`` stub: d / (P's own days): the stub counts as a whole period, so a constant price
  costs exactly the price, as ``charge`` says, and a change inside it splits the price by days;
- ``none`` stub: 0: the stub is free whatever its prices, so it is never corrected either.
``period_days`` on a line is always n (P's cycle), the denominator §2 prints.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise

from models.billing.calendar import BillingPeriod
from models.billing.errors import InvalidChange
from models.billing.money import check_minor, checked_sum, round_half_up
from models.billing.proration import Proration
from models.billing.timeline import PriceRange, PriceTimeline, RangeStatus


class LineKind(StrEnum):
    RECURRING = "recurring"
    """A period billed at the timeline's price, per range of constant price."""
    PRORATION = "proration"
    """A correction of days already billed at another price."""


@dataclass(frozen=True)
class BilledRange:
    """One stored invoice line of a subscription, as the generator needs it back.

    All ends are exclusive (stored inclusive ends + 1 day). ``rate_minor`` is signed: the per-period
    price the line billed its range at (+ for recurring lines and the new side of a correction,
    - for the old side). ``period_days`` is n, the billed period's cycle.
    """

    period_start: date
    period_end: date
    period_days: int
    start: date
    end: date
    plan: str
    rate_minor: int

    @property
    def period(self) -> BillingPeriod:
        return BillingPeriod(self.period_start, self.period_end, self.period_end - timedelta(days=self.period_days))


@dataclass(frozen=True)
class ChargeLine:
    """One invoice line of a subscription: a period (or a range of it) and what it costs.

    ``period`` is the billed period P; ``range_start``/``range_end`` the days the line is about
    (None: the whole period); ``rate_minor`` the signed per-period price it bills them at.
    """

    subscription_key: str
    plan: str
    period: BillingPeriod
    amount_minor: int
    position: int = 0
    kind: LineKind = LineKind.RECURRING
    range_start: date | None = None
    range_end: date | None = None
    rate_minor: int = 0

    @property
    def start(self) -> date:
        return self.range_start or self.period.start

    @property
    def end(self) -> date:
        return self.range_end or self.period.end

    @property
    def last_day(self) -> date:
        """The inclusive end of the range, as invoices print ``period_end``."""
        return self.end - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def period_days(self) -> int:
        return self.period.cycle_days

    def billed_range(self) -> BilledRange:
        """What this line bills, as the generator reads it back once the line is stored."""
        return BilledRange(
            self.period.start, self.period.end, self.period.cycle_days, self.start, self.end, self.plan, self.rate_minor
        )


def weight(period: BillingPeriod, days: int, policy: Proration) -> Fraction:
    """The share of a per-period price that ``days`` days of ``period`` cost (module docstring)."""
    policy = Proration(policy)
    if not period.is_stub:
        return Fraction(days, period.days)
    if policy is Proration.NONE:
        return Fraction(0)
    if policy is Proration.FULL:
        return Fraction(days, period.days)
    return Fraction(days, period.cycle_days)


def line_amount(rate_minor: int, period: BillingPeriod, days: int, policy: Proration) -> int:
    """``rate x weight``, rounded once, half-up; never beyond the rate, so it fits 64 bits."""
    return round_half_up(rate_minor * weight(period, days, policy))


def range_lines(
    key: str, period: BillingPeriod, timeline: PriceTimeline, policy: Proration, position: int = 0
) -> list[ChargeLine]:
    """The recurring lines of ``period``: one per maximal range of constant non-zero price.

    A period that is one active range at one price gives exactly one line, even at 0 (a free
    ``none`` stub, a free plan), as ``charge`` always did; a paused or ended span bills nothing.
    """
    ranges = timeline.ranges(period.start, period.end)
    if len(ranges) == 1 and ranges[0].status is RangeStatus.ACTIVE:
        only = ranges[0]
        return [_line(key, period, only, only.amount_minor, LineKind.RECURRING, policy, position)]
    if weight(period, 1, policy) == 0:
        return []
    return [
        _line(key, period, r, r.amount_minor, LineKind.RECURRING, policy, position) for r in ranges if r.amount_minor
    ]


def corrections(
    key: str,
    period: BillingPeriod,
    billed: Iterable[BilledRange],
    timeline: PriceTimeline,
    policy: Proration,
    position: int = 0,
) -> list[ChargeLine]:
    """The proration lines that make what ``period`` was billed equal what it should be billed."""
    if weight(period, 1, policy) == 0:
        return []  # a free stub: nothing was charged, nothing to correct
    billed = [b for b in billed if b.period_start == period.start]
    cuts = {period.start, period.end}
    for line in billed:
        if not (period.start <= line.start < line.end <= period.end):
            raise InvalidChange(
                "billed", f"range {line.start} .. {line.end} is not inside its period {period.start} .. {period.end}"
            )
        cuts.update((line.start, line.end))
    expected = timeline.ranges(period.start, period.end)
    cuts.update(r.start for r in expected)
    differing: list[tuple[date, date, frozenset[tuple[str, int]], tuple[str, int] | None]] = []
    for lo, hi in pairwise(sorted(cuts)):
        was, should = _billed_state(billed, lo), _rate_at(expected, lo)
        if was == (frozenset({should}) if should else frozenset()):
            continue
        if differing and differing[-1][1] == lo and differing[-1][2:] == (was, should):
            differing[-1] = (differing[-1][0], hi, was, should)  # the same difference goes on: one range
        else:
            differing.append((lo, hi, was, should))
    return [line for diff in differing for line in _correct(key, period, policy, position, *diff)]


def _billed_state(billed: Sequence[BilledRange], day: date) -> frozenset[tuple[str, int]]:
    """The (plan, rate) pairs ``day`` is billed at: signed rates summed per plan, zeros dropped."""
    rates: dict[str, int] = defaultdict(int)
    for line in billed:
        if line.start <= day < line.end:
            rates[line.plan] = check_minor(rates[line.plan] + line.rate_minor, "rate")
    return frozenset((plan, rate) for plan, rate in rates.items() if rate)


def _rate_at(expected: Sequence[PriceRange], day: date) -> tuple[str, int] | None:
    return next(r.rate_key for r in expected if r.start <= day < r.end)


def _correct(
    key: str,
    period: BillingPeriod,
    policy: Proration,
    position: int,
    start: date,
    end: date,
    was: frozenset[tuple[str, int]],
    should: tuple[str, int] | None,
) -> list[ChargeLine]:
    """``-billed x d / n`` for each billed (plan, rate), then ``+timeline x d / n``, each rounded once."""
    days = (end - start).days
    found = [
        ChargeLine(key, plan, period, -line_amount(rate, period, days, policy), position, LineKind.PRORATION,
                   start, end, -rate)
        for plan, rate in sorted(was)
    ]
    if should is not None:
        plan, rate = should
        found.append(ChargeLine(key, plan, period, line_amount(rate, period, days, policy), position,
                                LineKind.PRORATION, start, end, rate))
    return found


def _line(
    key: str, period: BillingPeriod, piece: PriceRange, rate: int, kind: LineKind, policy: Proration, position: int
) -> ChargeLine:
    whole = piece.start == period.start and piece.end == period.end
    return ChargeLine(
        key, piece.plan, period, line_amount(rate, period, piece.days, policy), position, kind,
        None if whole else piece.start, None if whole else piece.end, rate,
    )


def lines_total(lines: Iterable[ChargeLine], field: str = "amount") -> int:
    """The sum of lines' amounts, refusing one beyond 64 bits."""
    return checked_sum((line.amount_minor for line in lines), field)


__all__ = [
    "BilledRange",
    "ChargeLine",
    "LineKind",
    "corrections",
    "line_amount",
    "lines_total",
    "range_lines",
    "weight",
]
