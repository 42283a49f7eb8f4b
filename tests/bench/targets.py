"""The issue's performance targets, judged PASS or MISS with the margin; a MISS never fails the run."""

from __future__ import annotations

import math
from dataclasses import dataclass

BILL_RUN_SECONDS = 120.0
COPY_RATIO = 0.30
PEAK_RSS_MB = 250.0
RSS_GROWTH = 0.10
BARE_RATIO = 0.40
BARE_RATIO_STRETCH = 0.60
P99_MS = 250.0
SIMULATE_RATIO = 3.0
SIMULATE_RANDOM_SECONDS = 300.0


@dataclass(frozen=True)
class Target:
    name: str
    figure: str
    goal: str
    passed: bool
    margin: str

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "MISS"


def at_most(name: str, value: float, limit: float, unit: str, fmt: str = ".1f") -> Target:
    if math.isnan(value):
        return Target(name, "nothing measured", f"≤ {limit:{fmt}} {unit}", False, "no measurement")
    gap = limit - value
    side = "under" if gap >= 0 else "over"
    return Target(name, f"{value:{fmt}} {unit}", f"≤ {limit:{fmt}} {unit}", gap >= 0,
                  f"{abs(gap):{fmt}} {unit} {side} ({abs(gap) / limit:.0%} of the limit)")


def at_least_ratio(name: str, value: float, floor: float) -> Target:
    gap = value - floor
    side = "above" if gap >= 0 else "below"
    return Target(name, f"{value:.2f}", f"≥ {floor:.2f}", gap >= 0, f"{abs(gap) * 100:.0f} points {side}")


def rss_growth(small: float, large: float, small_n: int, large_n: int) -> Target:
    growth = (large - small) / small
    inside = abs(growth) <= RSS_GROWTH
    return Target(f"peak RSS within {RSS_GROWTH:.0%} between {small_n:,} and {large_n:,} accounts",
                  f"{small:.1f} → {large:.1f} MB ({growth:+.1%})", f"|change| ≤ {RSS_GROWTH:.0%}", inside,
                  f"{abs(abs(growth) - RSS_GROWTH) * 100:.1f} points {'inside' if inside else 'outside'}")
