"""Correctness checks: a benchmark figure counts only when the run did exactly the right work.

A failed check makes ``make bench`` exit non-zero; a missed performance target does not (it is
reported, see ``targets``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    part: str
    name: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        return bool(self.expected == self.actual)


class Checks:
    """Collects checks for one part: ``checks.equal("invoices", 100, 100)``."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.items: list[Check] = []

    def equal(self, name: str, expected: Any, actual: Any) -> None:
        self.items.append(Check(self.part, name, expected, actual))

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    def failures(self) -> list[Check]:
        return [item for item in self.items if not item.ok]
