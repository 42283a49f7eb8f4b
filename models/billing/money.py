"""Money as integer minor units of an ISO 4217 currency.

Amounts cross the wire as decimal strings in major units ("30.00", "345" for JPY) and live
everywhere else as ``int`` minor units. The one rounding mode of the product is named here.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import cache

from iso4217 import Currency

from models.billing.errors import AmountOverflow, InvalidAmount, UnknownCurrency

ROUNDING = "half-up"
"""Every computed line is rounded once, half away from zero (Kill Bill, Lago, Aria)."""

MAX_MINOR = 2**63 - 1
"""Amounts must fit a signed 64-bit column."""


@cache
def _exponents() -> dict[str, int]:
    """ISO 4217's own table (not CLDR's display digits, which differ for IQD, RSD, ALL...).

    Codes without a minor unit (gold ``XAU``, the test code ``XXX``) are not money one can bill in.
    """
    return {c.code: c.exponent for c in Currency if c.exponent is not None}


def minor_units(currency: str) -> int:
    """Decimals of the currency's minor unit (JPY 0, USD 2, KWD 3, CLF 4), from ISO 4217."""
    digits = _exponents().get(currency)
    if digits is None:
        raise UnknownCurrency(currency)
    return digits


def check_currency(currency: object) -> str:
    """Return the currency code if it is a known ISO 4217 code, else raise."""
    if not isinstance(currency, str) or currency not in _exponents():
        raise UnknownCurrency(str(currency))
    return currency


def parse_amount(text: object, currency: str, *, field: str = "amount") -> int:
    """Parse a decimal string in major units into minor units, refusing anything inexact.

    Floats are refused even when they look harmless: ``0.1`` has no exact binary value, and a
    billing system that accepts them has already lost the cent it will be asked about.
    """
    if isinstance(text, bool) or not isinstance(text, str):
        kind = type(text).__name__
        raise InvalidAmount(field, f"must be a decimal string such as \"30.00\", not a {kind}")
    digits = minor_units(currency)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidAmount(field, f"{text!r} is not a decimal number") from None
    if not value.is_finite():
        raise InvalidAmount(field, f"{text!r} is not a finite number")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if value.adjusted() > 18:  # checked before scaling: "1e999999" must not build a million-digit int
        raise InvalidAmount(field, f"{text!r} is too large")
    if -exponent > digits:
        raise InvalidAmount(field, f"{text!r} has more than {digits} decimals for {currency}")
    minor = int(value.scaleb(digits))
    if abs(minor) > MAX_MINOR:
        raise InvalidAmount(field, f"{text!r} is too large")
    return minor


def format_amount(minor: int, currency: str) -> str:
    """Render minor units as a decimal string with the currency's own decimals (integer arithmetic)."""
    digits = minor_units(currency)
    if digits == 0:
        return str(minor)
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{'-' if minor < 0 else ''}{whole}.{fraction:0{digits}d}"


def round_half_up(value: Fraction) -> int:
    """Round an exact fraction of minor units to an integer, halves away from zero."""
    magnitude = abs(value)
    rounded = (magnitude.numerator * 2 + magnitude.denominator) // (magnitude.denominator * 2)
    return rounded if value >= 0 else -rounded


def checked_sum(values: Iterable[int], field: str) -> int:
    """Sum minor units, refusing a result (or a partial sum) outside a signed 64-bit integer."""
    total = 0
    for value in values:
        total += value
        if abs(total) > MAX_MINOR:
            raise AmountOverflow(field, f"the sum exceeds the 64-bit limit of {MAX_MINOR} minor units")
    return total


def check_minor(value: int, field: str) -> int:
    """Return ``value`` if it fits a signed 64-bit column of minor units, else raise naming ``field``."""
    if abs(value) > MAX_MINOR:
        raise AmountOverflow(field, f"{value} exceeds the 64-bit limit of {MAX_MINOR} minor units")
    return value
