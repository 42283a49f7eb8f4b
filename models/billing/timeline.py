"""A subscription's price as a function of the day (DESIGN §2b, "Price timeline").

The timeline is a value built from what the subscription was given, in arrival order: its
initial plan and price from its start, price changes (applied by effective date, then by
arrival: a later message for the same day wins), pauses ``[from, until)`` at price 0 (``until``
None: open until a resume closes it) and an end (a cancel) after which nothing is billed.

``ranges(a, b)`` cuts ``[a, b)`` into the maximal ranges of constant (plan, price, status):
the "range lines" of §2b. The incremental methods (``changed``, ``paused``, ``resumed``,
``ended``) validate one new message against the timeline as it stands, so a handler can reject
it with a reason before storing it; ``replay`` rebuilds a timeline from stored messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from itertools import pairwise

from models.billing.errors import InvalidChange
from models.billing.money import MAX_MINOR


class RangeStatus(StrEnum):
    NOT_STARTED = "not_started"
    """Before the subscription's start: nothing is billed."""
    ACTIVE = "active"
    """Billed at the plan's price."""
    PAUSED = "paused"
    """Inside a pause: price 0, the plan is kept (anchors do not move)."""
    ENDED = "ended"
    """On or after the end (a cancel): nothing is billed."""


@dataclass(frozen=True)
class PriceChange:
    """From ``effective`` on, the subscription is ``plan`` at ``amount_minor`` per period."""

    effective: date
    plan: str
    amount_minor: int


@dataclass(frozen=True)
class Pause:
    """Days in ``[start, until)`` cost nothing; ``until`` None = until a resume closes it."""

    start: date
    until: date | None = None


@dataclass(frozen=True)
class Resume:
    """Closes the open pause on ``effective`` (the first day billed again)."""

    effective: date


@dataclass(frozen=True)
class Cancellation:
    """Nothing is billed on or after ``effective`` (the caller resolves ``at_period_end``)."""

    effective: date


LifecycleEvent = PriceChange | Pause | Resume | Cancellation
"""One stored lifecycle message, as ``PriceTimeline.replay`` takes it."""


@dataclass(frozen=True)
class PriceRange:
    """Half-open ``[start, end)`` of one constant (plan, price, status); price 0 unless ACTIVE."""

    start: date
    end: date
    plan: str
    amount_minor: int
    status: RangeStatus = RangeStatus.ACTIVE

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def rate_key(self) -> tuple[str, int] | None:
        """What the range bills: (plan, price), or None when it bills nothing (the plan then is moot)."""
        return (self.plan, self.amount_minor) if self.amount_minor else None


def _check_amount(amount_minor: int, field_name: str) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise InvalidChange(field_name, f"must be an integer of minor units, not {type(amount_minor).__name__}")
    if amount_minor < 0:
        raise InvalidChange(field_name, f"a price cannot be negative ({amount_minor}); use a credit instead")
    if amount_minor > MAX_MINOR:
        raise InvalidChange(field_name, f"{amount_minor} exceeds the 64-bit limit of {MAX_MINOR} minor units")


@dataclass(frozen=True)
class PriceTimeline:
    """The price of one subscription on every day; see the module docstring.

    ``changes`` and ``pauses`` are in arrival order. Changes or pauses that lie on or after
    ``end`` are allowed here (a cancel that arrives later cuts a scheduled change, as Stripe
    releases a schedule on cancel); the incremental methods refuse new ones after the end.
    """

    start: date
    plan: str
    amount_minor: int
    changes: tuple[PriceChange, ...] = ()
    pauses: tuple[Pause, ...] = ()
    end: date | None = None
    _pieces: tuple[PriceRange, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_amount(self.amount_minor, "amount")
        for change in self.changes:
            _check_amount(change.amount_minor, "amount")
            if change.effective < self.start:
                raise InvalidChange(
                    "effective_date", f"{change.effective} is before the subscription's start {self.start}"
                )
        for pause in self.pauses:
            if pause.start < self.start:
                raise InvalidChange("from", f"{pause.start} is before the subscription's start {self.start}")
            if pause.until is not None and pause.until <= pause.start:
                raise InvalidChange("until", f"{pause.until} is not after the pause's start {pause.start}")
        if self.end is not None and self.end < self.start:
            raise InvalidChange("effective_date", f"the end {self.end} is before the start {self.start}")
        object.__setattr__(self, "_pieces", self._build())

    # -- reading ---------------------------------------------------------------------------------

    def ranges(self, start: date, end: date) -> list[PriceRange]:
        """The maximal ranges of constant (plan, price, status) that tile ``[start, end)``."""
        if end <= start:
            return []
        pieces = self._pieces
        index = max(0, _count_at_or_before([p.start for p in pieces], start) - 1)
        found: list[PriceRange] = []
        if start < pieces[0].start:
            found.append(PriceRange(start, min(end, pieces[0].start), self.plan, 0, RangeStatus.NOT_STARTED))
        for piece in pieces[index:]:
            if piece.start >= end:
                break
            lo, hi = max(start, piece.start), min(end, piece.end)
            if lo < hi:
                found.append(PriceRange(lo, hi, piece.plan, piece.amount_minor, piece.status))
        return found

    def price_on(self, day: date) -> PriceRange:
        """The one-day range of ``day``: what that day is billed at, and why."""
        return self.ranges(day, day + timedelta(days=1))[0]

    def list_price_on(self, day: date) -> tuple[str, int]:
        """The plan and price in force on ``day``, ignoring pauses and the end (to fill a change's
        omitted ``plan`` or ``amount``)."""
        plan, amount = self.plan, self.amount_minor
        for change in sorted(self.changes, key=lambda c: c.effective):  # stable: arrival order per day
            if change.effective > day:
                break
            plan, amount = change.plan, change.amount_minor
        return plan, amount

    @property
    def open_pause(self) -> Pause | None:
        """The pause still waiting for a resume, if any."""
        return next((p for p in reversed(self.pauses) if p.until is None), None)

    # -- validated updates, one message at a time ------------------------------------------------

    def changed(self, effective: date, plan: str, amount_minor: int) -> PriceTimeline:
        """A ``subscription.change`` from ``effective`` on (already moved by ``proration: none``)."""
        self._check_before_end(effective, "effective_date")
        return replace(self, changes=(*self.changes, PriceChange(effective, plan, amount_minor)))

    def paused(self, start: date, until: date | None = None) -> PriceTimeline:
        """A ``subscription.pause`` of ``[start, until)``; only one pause may be open at a time."""
        self._check_before_end(start, "from")
        open_pause = self.open_pause
        if open_pause is not None:
            raise InvalidChange("from", f"the subscription is already paused since {open_pause.start} until a resume")
        return replace(self, pauses=(*self.pauses, Pause(start, until)))

    def resumed(self, effective: date) -> PriceTimeline:
        """A ``subscription.resume``: closes the open pause on ``effective``."""
        open_pause = self.open_pause
        if open_pause is None:
            raise InvalidChange("subscription", "has no open pause to resume")
        if effective < open_pause.start:
            raise InvalidChange("effective_date", f"{effective} is before the pause's start {open_pause.start}")
        self._check_before_end(effective, "effective_date", inclusive=True)
        pauses = list(self.pauses)
        index = len(pauses) - 1 - pauses[::-1].index(open_pause)
        if effective == open_pause.start:
            del pauses[index]  # resumed the day it began: the pause covered no day
        else:
            pauses[index] = Pause(open_pause.start, effective)
        return replace(self, pauses=tuple(pauses))

    def ended(self, effective: date) -> PriceTimeline:
        """A ``subscription.cancel`` effective on ``effective``: an earlier end wins, a later one is refused."""
        if effective < self.start:
            raise InvalidChange("effective_date", f"{effective} is before the subscription's start {self.start}")
        if self.end is not None and effective > self.end:
            raise InvalidChange("effective_date", f"{effective} is after the subscription's end {self.end}")
        return replace(self, end=effective)

    @classmethod
    def replay(cls, start: date, plan: str, amount_minor: int, events: Iterable[LifecycleEvent]) -> PriceTimeline:
        """Rebuild a timeline from stored messages in arrival order, validating each as it came."""
        timeline = cls(start, plan, amount_minor)
        for event in events:
            if isinstance(event, PriceChange):
                timeline = timeline.changed(event.effective, event.plan, event.amount_minor)
            elif isinstance(event, Pause):
                timeline = timeline.paused(event.start, event.until)
            elif isinstance(event, Resume):
                timeline = timeline.resumed(event.effective)
            else:
                timeline = timeline.ended(event.effective)
        return timeline

    # -- internals -------------------------------------------------------------------------------

    def _check_before_end(self, day: date, field_name: str, *, inclusive: bool = False) -> None:
        if day < self.start:
            raise InvalidChange(field_name, f"{day} is before the subscription's start {self.start}")
        if self.end is not None and (day > self.end or (day == self.end and not inclusive)):
            raise InvalidChange(field_name, f"{day} is on or after the subscription's end {self.end}")

    def _build(self) -> tuple[PriceRange, ...]:
        """The pieces from the start to the end (or to ``date.max``), merged where equal."""
        stop = self.end if self.end is not None else date.max
        prices = _price_steps(self.start, self.plan, self.amount_minor, self.changes)
        paused = _union(self.pauses, stop)
        cuts = {self.start, stop}
        cuts.update(day for day, _, _ in prices if day < stop)
        for lo, hi in paused:
            cuts.update((lo, hi))
        days = sorted(day for day in cuts if self.start <= day <= stop)
        pieces: list[PriceRange] = []
        price_days = [day for day, _, _ in prices]
        pause_index = 0
        for lo, hi in pairwise(days):
            _, plan, amount = prices[_count_at_or_before(price_days, lo) - 1]
            while pause_index < len(paused) and paused[pause_index][1] <= lo:
                pause_index += 1
            in_pause = pause_index < len(paused) and paused[pause_index][0] <= lo
            status = RangeStatus.PAUSED if in_pause else RangeStatus.ACTIVE
            piece = PriceRange(lo, hi, plan, 0 if in_pause else amount, status)
            if pieces and _same(pieces[-1], piece):
                pieces[-1] = replace(pieces[-1], end=hi)
            else:
                pieces.append(piece)
        if self.end is not None:
            last_plan = pieces[-1].plan if pieces else self.plan
            pieces.append(PriceRange(self.end, date.max, last_plan, 0, RangeStatus.ENDED))
        return tuple(pieces)


def _count_at_or_before(days: Sequence[date], day: date) -> int:
    """How many of the sorted ``days`` are on or before ``day`` (a binary search; ``bisect`` is not
    on the core's import allowlist)."""
    lo, hi = 0, len(days)
    while lo < hi:
        mid = (lo + hi) // 2
        if days[mid] <= day:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _same(left: PriceRange, right: PriceRange) -> bool:
    """Two adjacent pieces merge when they bill the same; pauses merge across plan changes."""
    if left.status is not right.status:
        return False
    if left.status is RangeStatus.PAUSED:
        return True
    return (left.plan, left.amount_minor) == (right.plan, right.amount_minor)


def _price_steps(
    start: date, plan: str, amount_minor: int, changes: Sequence[PriceChange]
) -> list[tuple[date, str, int]]:
    """(from, plan, price) steps: by effective date, and for one date the last arrival wins."""
    last_per_day: dict[date, tuple[str, int]] = {start: (plan, amount_minor)}
    for change in changes:  # arrival order: a later one overwrites an earlier one of the same day
        last_per_day[change.effective] = (change.plan, change.amount_minor)
    return [(day, *last_per_day[day]) for day in sorted(last_per_day)]


def _union(pauses: Iterable[Pause], stop: date) -> list[tuple[date, date]]:
    """The paused days as sorted, disjoint, non-adjacent ``[from, until)`` spans, cut at ``stop``."""
    spans = sorted((p.start, min(p.until or stop, stop)) for p in pauses if p.start < stop)
    merged: list[tuple[date, date]] = []
    for lo, hi in spans:
        if lo >= hi:
            continue
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged
