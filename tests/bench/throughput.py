"""The shape of a throughput figure: N messages (or accounts), how fast, and what it cost."""

from __future__ import annotations

from dataclasses import dataclass

from tests.bench.checks import Checks
from tests.bench.sampler import Usage


@dataclass
class Throughput:
    name: str
    messages: int
    per_second: float
    seconds: float
    startup_seconds: float
    usage: Usage
    checks: Checks
    enqueue_per_second: float | None = None
