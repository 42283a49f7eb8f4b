"""One handler per message type: the table the worker's actors are built from."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from jobs import balance_lines, bill_runs, lifecycle, onboarding
from jobs.pipeline import Handler

HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        onboarding.MESSAGE_TYPE: onboarding.handle_onboard_account,
        balance_lines.CREATE: balance_lines.handle_create_balance_line,
        balance_lines.REVERSE: balance_lines.handle_reverse_balance_line,
        bill_runs.TRIGGER: bill_runs.handle_trigger,
        lifecycle.ADD: lifecycle.handle_add,
        lifecycle.CHANGE: lifecycle.handle_change,
        lifecycle.PAUSE: lifecycle.handle_pause,
        lifecycle.RESUME: lifecycle.handle_resume,
        lifecycle.CANCEL: lifecycle.handle_cancel,
        lifecycle.UPDATE: lifecycle.handle_update,
    }
)
