"""Rejections: messages the worker refuses for good. Never retried.

A rejection carries a ``code`` (a ``jobs.outcomes.RejectionCode``) and a ``reason`` written for a
person: what failed and why, never a secret, an expected signature or a whole payload. Retrying
cannot fix any of them: the pipeline records them and returns, so the broker never sees one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from jobs.outcomes import RejectionCode
from models.billing.errors import BillingError

_OWN_ERROR = "billing"
"""The pydantic error type of ``field_failure``: its message is already phrased for a person."""

_ECHO_LIMIT = 40
"""Echoed input values are cut to this many characters: enough to recognise, not a payload dump."""


class Rejected(Exception):
    """A message refused for good, with a machine ``code`` and a human ``reason``."""

    code: RejectionCode

    def __init__(self, code: RejectionCode, reason: str) -> None:
        super().__init__(reason)
        self.code = RejectionCode(code)
        self.reason = reason


class InvalidMessage(Rejected):
    """Malformed envelope or body; ``reason`` starts with the dotted path of the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(RejectionCode.INVALID, f"{field}: {reason}")
        self.field = field

    @classmethod
    def from_validation_error(cls, error: ValidationError, *, default_field: str) -> InvalidMessage:
        """The first failure of a pydantic validation, phrased for a person.

        ``default_field`` names the whole document when the failure is about it (not an object).
        """
        first = error.errors(include_url=False)[0]
        path = [str(part) for part in first["loc"]]
        cause = (first.get("ctx") or {}).get("error")
        if first["type"] == "value_error" and isinstance(cause, BillingError):
            # Cross-field rules raise BillingError with a path relative to the model they check.
            path += cause.field.split(".")
            refusal = cls(".".join(path), cause.reason)
            refusal.code = RejectionCode(cause.code)  # a rule with its own code keeps it (currency_mismatch)
            return refusal
        return cls(".".join(path) or default_field, describe_error(first))


class _Fixed(Rejected):
    """A rejection whose code is fixed by its class."""

    fixed_code: ClassVar[RejectionCode]

    def __init__(self, reason: str) -> None:
        super().__init__(self.fixed_code, reason)


class Unauthorized(_Fixed):
    """The sender could not be authenticated: unsigned, forged, unknown key, stale timestamp."""

    fixed_code = RejectionCode.UNAUTHORIZED


class Forbidden(_Fixed):
    """An authenticated producer asked for something it is not allowed to do."""

    fixed_code = RejectionCode.FORBIDDEN


class LimitExceeded(_Fixed):
    """A per-line, per-account-per-day or rate limit of the producer was exceeded."""

    fixed_code = RejectionCode.LIMIT_EXCEEDED


class Conflict(_Fixed):
    """The idempotency key was already used with a different body."""

    fixed_code = RejectionCode.CONFLICT


class CurrencyMismatchRejected(_Fixed):
    """A balance line in another currency than its account's."""

    fixed_code = RejectionCode.CURRENCY_MISMATCH



def field_failure(reason: str) -> PydanticCustomError:
    """For validators: an error whose reason is shown exactly as written (braces included)."""
    return PydanticCustomError(_OWN_ERROR, "{reason}", {"reason": reason})


def echo(value: object) -> str:
    """A short, quoted rendering of an input value for a reason."""
    text = repr(value)
    return text if len(text) <= _ECHO_LIMIT else text[: _ECHO_LIMIT - 1] + "…"


def _json_kind(value: object) -> str:
    """The JSON name of a decoded value's type (what the sender wrote)."""
    names: dict[type, str] = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


_PHRASES: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be a string, not {kind}",
    "int_type": "must be a whole number, not {kind}",
    "bool_type": "must be true or false, not {kind}",
    "list_type": "must be a list, not {kind}",
    "dict_type": "must be an object, not {kind}",
    "model_type": "must be an object, not {kind}",
    "model_attributes_type": "must be an object, not {kind}",
    "date_type": "must be a date written YYYY-MM-DD, not {kind}",
    "datetime_type": "must be an ISO-8601 instant, not {kind}",
    "timezone_aware": "must carry a time zone (for example 2026-01-31T10:00:00Z)",
}


def describe_error(error: Any) -> str:
    """Plain words for one pydantic error dict (``ValidationError.errors()`` item)."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == _OWN_ERROR:
        return str(error["msg"])
    if kind in _PHRASES:
        return _PHRASES[kind].format(kind=_json_kind(value))
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected')}, not {echo(value)}"
    if kind == "string_too_short":
        minimum = ctx.get("min_length")
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters, not {len(str(value))}"
    if kind == "too_short":
        minimum = ctx.get("min_length")
        return f"must hold at least {minimum} item{'' if minimum == 1 else 's'}"
    if kind == "too_long":
        return f"must hold at most {ctx.get('max_length')} items, not {ctx.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        return f"{echo(value)} has characters that are not allowed here"
    message = str(error.get("msg", "is not valid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:]
