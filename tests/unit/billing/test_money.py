"""Money: ISO 4217 minor units, exact decimal strings in, integer minor units out, half-up rounding."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from models.billing.errors import BillingError, InvalidAmount, UnknownCurrency
from models.billing.money import (
    MAX_MINOR,
    ROUNDING,
    check_currency,
    format_amount,
    minor_units,
    parse_amount,
    round_half_up,
)


@pytest.mark.parametrize(
    ("currency", "digits"),
    [
        ("JPY", 0),  # yen: no minor unit
        ("KRW", 0),  # won: no minor unit
        ("USD", 2),  # 1 USD = 100 cents
        ("EUR", 2),  # 1 EUR = 100 cents
        ("KWD", 3),  # 1 KWD = 1000 fils
        ("BHD", 3),  # 1 BHD = 1000 fils
        ("CLF", 4),  # Unidad de Fomento: 4 decimals
    ],
)
def test_minor_units_follow_iso_4217(currency: str, digits: int) -> None:
    assert minor_units(currency) == digits


@pytest.mark.parametrize(
    ("currency", "iso_digits"),
    [
        ("IQD", 3),  # ISO 4217: Iraqi dinar = 1000 fils; CLDR says 0
        ("LBP", 2),  # ISO 4217: 2; CLDR says 0
        ("RSD", 2),  # ISO 4217: 2; CLDR says 0
        ("IRR", 2),  # ISO 4217: 2; CLDR says 0
        ("YER", 2),  # ISO 4217: 2; CLDR says 0
        ("ALL", 2),  # ISO 4217: 2; CLDR says 0
    ],
)
def test_minor_units_where_cldr_differs_from_iso_4217(currency: str, iso_digits: int) -> None:
    assert minor_units(currency) == iso_digits


@pytest.mark.parametrize("currency", ["XAU", "XXX", "XDR"])
def test_codes_without_a_minor_unit_are_not_billable(currency: str) -> None:
    # ISO 4217 lists metals, the test code and SDRs with no minor unit ("N.A."): nothing to round to.
    with pytest.raises(UnknownCurrency):
        minor_units(currency)


@pytest.mark.parametrize("currency", ["usd", "ABC", "", "US", "USDD", "123"])
def test_unknown_currencies_are_refused(currency: str) -> None:
    with pytest.raises(UnknownCurrency) as caught:
        minor_units(currency)
    assert caught.value.field == "currency"
    assert repr(currency) in caught.value.reason


@pytest.mark.parametrize("currency", [None, 840, b"USD"])
def test_check_currency_refuses_non_strings(currency: object) -> None:
    with pytest.raises(UnknownCurrency):
        check_currency(currency)


def test_check_currency_returns_a_known_code() -> None:
    assert check_currency("KWD") == "KWD"


def test_domain_errors_share_one_root_and_are_value_errors() -> None:
    # A shell can catch every rejection with one except clause and show its reason as it is.
    error = InvalidAmount("amount", "too many decimals")
    assert isinstance(error, BillingError)
    assert isinstance(error, ValueError)
    assert str(error) == "amount: too many decimals"
    assert error.code == "invalid"


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("30.00", "USD", 3000),  # 30.00 x 10^2
        ("30", "USD", 3000),  # 30 x 10^2: fewer decimals than allowed is exact
        ("0.5", "USD", 50),  # 0.5 x 10^2
        ("0.01", "USD", 1),  # one cent
        ("-5.00", "USD", -500),  # signed (adjustments): -5.00 x 10^2
        (" 7.10 ", "USD", 710),  # surrounding spaces are stripped
        ("345", "JPY", 345),  # 345 x 10^0
        ("0", "JPY", 0),  # zero
        ("1.234", "KWD", 1234),  # 1.234 x 10^3
        ("0.001", "KWD", 1),  # one fils
        ("12.5", "KWD", 12500),  # 12.5 x 10^3
        ("92233720368547758.07", "USD", 2**63 - 1),  # the largest signed 64-bit amount
        ("-92233720368547758.07", "USD", -(2**63 - 1)),  # and its negative
    ],
)
def test_parse_amount_exact_decimal_strings(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        (30.0, "USD"),  # a float, even a harmless-looking one
        (0.1, "USD"),  # a float with no exact binary value
        (float("nan"), "USD"),  # a float NaN
        (30, "USD"),  # an int: the unit (major or minor?) would be ambiguous
        (True, "USD"),  # bool is an int subclass: refused too
        (None, "USD"),
        (Decimal("30.00"), "USD"),  # only strings cross the wire
        ("NaN", "USD"),  # a string NaN
        ("sNaN", "USD"),
        ("Infinity", "USD"),
        ("-inf", "USD"),
        ("", "USD"),
        ("abc", "USD"),
        ("30,00", "USD"),  # a decimal comma
        ("1.001", "USD"),  # 3 decimals > 2 for USD
        ("0.000", "USD"),  # 3 decimals > 2, even for zero
        ("1.5", "JPY"),  # 1 decimal > 0 for JPY
        ("100.0", "JPY"),  # 1 decimal > 0 for JPY, even with a zero digit
        ("1.2345", "KWD"),  # 4 decimals > 3 for KWD
        ("92233720368547758.08", "USD"),  # 2^63 minor units: one past a signed 64-bit column
    ],
)
def test_parse_amount_refuses_inexact_or_non_string_values(value: object, currency: str) -> None:
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(value, currency)
    assert caught.value.field == "amount"


def test_parse_amount_names_the_field_it_refuses() -> None:
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(0.1, "USD", field="subscriptions[0].amount")
    assert caught.value.field == "subscriptions[0].amount"
    assert "float" in caught.value.reason


def test_parse_amount_says_how_many_decimals_the_currency_has() -> None:
    with pytest.raises(InvalidAmount, match="more than 0 decimals for JPY"):
        parse_amount("345.5", "JPY")


def test_parse_amount_refuses_an_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency):
        parse_amount("30.00", "XYZ")


@pytest.mark.parametrize("text", ["1e999999", "1E999999999"])
def test_parse_amount_refuses_huge_exponents_as_invalid_amount(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(text, "USD")


def test_parse_amount_refuses_a_huge_exponent_before_scaling_it() -> None:
    # "1e200000" would be a 200,001-digit int if scaled first; the size is checked on the exponent.
    with pytest.raises(InvalidAmount, match="too large"):
        parse_amount("1e200000", "USD")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (3000, "USD", "30.00"),  # 3000 / 10^2
        (5, "USD", "0.05"),  # 5 / 10^2
        (-5, "USD", "-0.05"),  # the sign survives
        (0, "USD", "0.00"),  # always the currency's decimals
        (345, "JPY", "345"),  # 345 / 10^0: no decimal point
        (12345, "KWD", "12.345"),  # 12345 / 10^3
        (1, "KWD", "0.001"),  # 1 / 10^3
        (0, "KWD", "0.000"),
        (MAX_MINOR, "USD", "92233720368547758.07"),  # (2^63 - 1) / 10^2, no float on the way
    ],
)
def test_format_amount(minor: int, currency: str, text: str) -> None:
    assert format_amount(minor, currency) == text
    assert parse_amount(text, currency) == minor


def test_the_rounding_mode_is_named_once() -> None:
    assert ROUNDING == "half-up"


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (Fraction(0), 0),
        (Fraction(7), 7),  # already whole
        (Fraction(1, 2), 1),  # tie 0.5 -> 1 (half-up; banker's rounding would give 0)
        (Fraction(3, 2), 2),  # tie 1.5 -> 2
        (Fraction(5, 2), 3),  # tie 2.5 -> 3 (banker's would give 2)
        (Fraction(-1, 2), -1),  # tie -0.5 -> -1 (half away from zero)
        (Fraction(-5, 2), -3),  # tie -2.5 -> -3
        (Fraction(49, 100), 0),  # 0.49 -> 0
        (Fraction(51, 100), 1),  # 0.51 -> 1
        (Fraction(1, 3), 0),  # 0.333.. -> 0
        (Fraction(2, 3), 1),  # 0.666.. -> 1
        (Fraction(-2, 3), -1),  # -0.666.. -> -1
        (Fraction(10000, 3), 3333),  # 100.00 x 1/3 = 3333.33.. minor -> 3333
        (Fraction(20000, 3), 6667),  # 100.00 x 2/3 = 6666.66.. minor -> 6667
        (Fraction(30000, 31) * 10, 9677),  # 300.00 x 10/31 = 9677.41.. -> 9677
        (Fraction(2001, 2), 1001),  # KWD 2.001 / 2 = 1000.5 fils -> 1001
        (Fraction(2**64 + 1, 2), 2**63 + 1),  # exact on huge values (no float on the way)
    ],
)
def test_round_half_up(value: Fraction, rounded: int) -> None:
    assert round_half_up(value) == rounded
