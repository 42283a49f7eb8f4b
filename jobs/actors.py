"""Every actor, declared on the broker that ``worker.broker`` installs. The dramatiq CLI loads this."""

from jobs import balance_lines, bill_runs, onboarding, quarantine
from worker import broker as _broker  # noqa: F401 - must run before any @dramatiq.actor

__all__ = ["balance_lines", "bill_runs", "onboarding", "quarantine"]
