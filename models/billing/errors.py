"""Domain errors: bad input or a rule the request breaks. Never retried.

Each error names the field it is about and says why, so a rejection reason can be shown to a
person as it is.
"""

from __future__ import annotations


class BillingError(ValueError):
    """Root of every domain error; ``code`` is the rejection code it maps to."""

    code = "invalid"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidAmount(BillingError):
    """An amount that is not an exact decimal string in the currency's minor units."""


class UnknownCurrency(BillingError):
    """A currency code that ISO 4217 does not know."""

    def __init__(self, currency: str, field: str = "currency") -> None:
        super().__init__(field, f"{currency!r} is not an ISO 4217 currency code")


class InvalidSchedule(BillingError):
    """A bill day, interval or anchor that cannot describe a billing calendar."""


class CatchUpTooLong(BillingError):
    """A retroactive start that would bill more periods at once than the configured bound."""


class InvalidChange(BillingError):
    """A lifecycle change (price change, pause, resume, cancel) that the subscription cannot take."""


class AmountOverflow(BillingError):
    """A computed amount or sum that would not fit a signed 64-bit column of minor units."""


class CurrencyMismatch(BillingError):
    """An amount in another currency than the account's."""

    code = "currency_mismatch"
