"""Message bodies as strict pydantic models, and ``parse_body``.

Strict on purpose: JSON must not smuggle a float into money, a string into a number or a
``true`` into a day, so amounts and percents are decimal strings and numbers are whole numbers.
Every failure becomes an ``InvalidMessage`` whose reason starts with the dotted path of the
first failing field (``bill_day: must be between 1 and 31, not 0``).

Amounts stay strings on the models, as sent; the validated integer minor units are exposed as
``amount_minor`` properties (``SubscriptionSpec.amount_minor`` is filled by ``OnboardAccount``,
which knows the account's currency; a balance line knows its own currency).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
)
from pydantic import model_validator as _model_validator

from jobs.errors import InvalidMessage, echo, field_failure
from models.billing.balance import CREDIT_KINDS, BalanceKind
from models.billing.errors import BillingError, CurrencyMismatch, UnknownCurrency
from models.billing.money import check_currency, parse_amount

PERCENT_DECIMALS = 4
_ID = re.compile(r"[A-Za-z0-9._:@-]+")
_DECIMAL = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)
"""Dates outside these years are invalid (DESIGN §2, "Limits of the arithmetic")."""


def _identifier(value: str) -> str:
    if not _ID.fullmatch(value):
        raise field_failure(f"{echo(value)} may only contain letters, digits and . _ : @ -")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise field_failure("must not be blank")
    return value


def _decimal_text(value: object) -> object:
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise field_failure(f'{echo(value)} is not a plain decimal number such as "30.00"')
        return value
    if isinstance(value, bool | int | float):
        raise field_failure(f'must be a decimal string such as "30.00", not the JSON number {value!r}')
    return value  # strict str validation words the remaining cases


def _iso_date(value: object) -> object:
    if isinstance(value, dt.datetime):
        raise field_failure("must be a date, not a date and time")
    if isinstance(value, str):
        if not _DATE.fullmatch(value):
            raise field_failure(f"{echo(value)} is not a date written YYYY-MM-DD")
        try:
            parsed = dt.date.fromisoformat(value)
        except ValueError as error:
            raise field_failure(f"{echo(value)} is not a calendar date ({error})") from None
        return _within_calendar(parsed)
    return value


def _within_calendar(value: dt.date) -> dt.date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise field_failure(f"{value} is outside the dates this worker bills ({MIN_DATE} to {MAX_DATE})")
    return value


def _currency(value: str) -> str:
    try:
        return check_currency(value)
    except UnknownCurrency as error:
        raise field_failure(error.reason) from None


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except Exception:  # ZoneInfo raises several types for bad keys (KeyError, ValueError, OSError)
        raise field_failure(f"{echo(value)} is not an IANA time zone such as 'Europe/Paris'") from None
    return value


def _between(low: int, high: int) -> AfterValidator:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise field_failure(f"must be between {low} and {high}, not {value}")
        return value

    return AfterValidator(check)


Identifier = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_identifier)]
LineId = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_identifier)]
Text200 = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]
Text500 = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_not_blank)]
PlanName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_not_blank)]
DecimalText = Annotated[str, BeforeValidator(_decimal_text)]
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
Currency = Annotated[str, AfterValidator(_currency)]
TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_timezone)]


class _Body(BaseModel):
    """Strict, closed, immutable: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class AccountInfo(_Body):
    id: Identifier
    name: Text200
    currency: Currency
    timezone: TimeZone = "UTC"


class SubscriptionSpec(_Body):
    """A recurring price; ``amount_minor`` is known once the account's currency is.

    ``id`` names it within its account (default: its plan): lifecycle messages refer to it.
    """

    id: LineId | None = None
    plan: PlanName
    amount: DecimalText
    interval: Literal["month", "year", "week"] = "month"
    interval_count: Annotated[int, _between(1, 120)] = 1
    timing: Literal["advance", "arrears"] = "advance"
    proration: Literal["daily", "full", "none"] = "daily"
    bill_month: Annotated[int, _between(1, 12)] | None = None
    bill_weekday: Annotated[int, _between(1, 7)] | None = None

    _amount_minor: int | None = PrivateAttr(default=None)

    @_model_validator(mode="after")
    def _calendar_fields_fit_interval(self) -> SubscriptionSpec:
        if self.bill_month is not None and self.interval == "week":
            raise BillingError("bill_month", "only month and year intervals have a bill month")
        if self.bill_weekday is not None and self.interval != "week":
            raise BillingError("bill_weekday", "only week intervals have a bill weekday")
        return self

    @property
    def key(self) -> str:
        """The subscription's id within its account."""
        return self.id if self.id is not None else self.plan

    def price_in(self, currency: str, field: str) -> int:
        """The price in minor units of ``currency``, checked; remembered as ``amount_minor``."""
        minor = parse_amount(self.amount, currency, field=field)
        if minor < 0:
            raise BillingError(field, f"must not be negative, not {echo(self.amount)}")
        self._amount_minor = minor
        return minor

    @property
    def amount_minor(self) -> int:
        """The price in minor units of the account's currency (set by ``OnboardAccount``)."""
        if self._amount_minor is None:
            raise RuntimeError("amount_minor is known only on a subscription validated by OnboardAccount")
        return self._amount_minor


def _percent(text: str) -> Decimal:
    value = Decimal(text)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: the pattern allows digits only
    if -exponent > PERCENT_DECIMALS:
        raise BillingError("percent", f"{echo(text)} has more than {PERCENT_DECIMALS} decimals")
    if not 0 < value <= 100:
        raise BillingError("percent", f"must be greater than 0 and at most 100, not {echo(text)}")
    return value


class BalanceLineSpec(_Body):
    """A ``balance_line.create`` body without ``account`` (as embedded in an onboarding)."""

    line_id: LineId
    kind: Annotated[BalanceKind, Field(strict=False)]  # the value, not an enum instance, arrives
    amount: DecimalText | None = None
    percent: DecimalText | None = None
    currency: Currency
    label: Text200
    reason: Text500
    author: Text200
    effective_date: IsoDate | None = None
    expires_on: IsoDate | None = None

    _amount_minor: int | None = PrivateAttr(default=None)
    _percent_value: Decimal | None = PrivateAttr(default=None)

    @_model_validator(mode="after")
    def _rules(self) -> BalanceLineSpec:
        if self.amount is None and self.percent is None:
            raise BillingError("amount", "is required (a discount may give a percent instead)")
        if self.amount is not None and self.percent is not None:
            raise BillingError("percent", "give either an amount or a percent, not both")
        if self.percent is not None:
            if self.kind != "discount":
                reason = f"only a discount may be a percent; a {self.kind} needs an amount"
                raise BillingError("percent", reason)
            self._percent_value = _percent(self.percent)
        else:
            self._amount_minor = self._checked_amount()
        self._check_expiry()
        return self

    def _checked_amount(self) -> int:
        assert self.amount is not None
        minor = parse_amount(self.amount, self.currency, field="amount")
        if self.kind == "adjustment":
            if minor == 0:
                reason = "an adjustment must not be zero (negative = credit, positive = charge)"
                raise BillingError("amount", reason)
        elif minor <= 0:
            raise BillingError("amount", f"a {self.kind} must be greater than zero, not {echo(self.amount)}")
        return minor

    def _check_expiry(self) -> None:
        if self.expires_on is None:
            return
        credit_like = self.kind in CREDIT_KINDS or (self._amount_minor or 0) < 0
        if not credit_like:
            raise BillingError("expires_on", "only credits, gifts, referrals and negative adjustments expire")
        if self.effective_date is not None and self.expires_on < self.effective_date:
            raise BillingError(
                "expires_on", f"{self.expires_on} is before effective_date {self.effective_date}"
            )

    @property
    def amount_minor(self) -> int | None:
        """Signed minor units of ``currency``; ``None`` for a percent discount."""
        return self._amount_minor

    @property
    def percent_value(self) -> Decimal | None:
        """The discount percent (0 < p <= 100, at most 4 decimals); ``None`` for an amount."""
        return self._percent_value


class CreateBalanceLine(BalanceLineSpec):
    """``balance_line.create``: idempotent by ``line_id``."""

    account: Identifier


class ReverseBalanceLine(_Body):
    """``balance_line.reverse``: idempotent by ``reversal_id``."""

    line_id: LineId
    reversal_id: LineId
    account: Identifier
    reason: Text500
    author: Text200


class TriggerBillRun(_Body):
    """``bill_run.trigger``: bill everything due up to ``date`` (default: each account's today)."""

    date: IsoDate | None = None


class OnboardAccount(_Body):
    """``account.onboard``: idempotent by ``account.id``."""

    account: AccountInfo
    start_date: IsoDate
    bill_day: Annotated[int, _between(1, 31)] | None = None
    combine_invoices: bool | None = None
    subscriptions: list[SubscriptionSpec] = Field(min_length=1, max_length=50)
    balance_lines: list[BalanceLineSpec] = Field(default_factory=list, max_length=100)

    @_model_validator(mode="after")
    def _amounts_in_account_currency(self) -> OnboardAccount:
        currency = self.account.currency
        keys: set[str] = set()
        for index, subscription in enumerate(self.subscriptions):
            subscription.price_in(currency, f"subscriptions.{index}.amount")
            if subscription.key in keys:
                raise BillingError(f"subscriptions.{index}.id", f"{echo(subscription.key)} names two subscriptions "
                                   "of the account (give each an id)")
            keys.add(subscription.key)
        seen: set[str] = set()
        for index, line in enumerate(self.balance_lines):
            if line.currency != currency:
                raise CurrencyMismatch(
                    f"balance_lines.{index}.currency",
                    f"{line.currency} does not match the account's currency {currency}",
                )
            if line.line_id in seen:
                raise BillingError(f"balance_lines.{index}.line_id", f"{echo(line.line_id)} appears twice")
            seen.add(line.line_id)
        return self

    @property
    def effective_bill_day(self) -> int:
        """The bill day: as sent, or the start date's day when omitted."""
        return self.bill_day if self.bill_day is not None else self.start_date.day


class _LifecycleBody(_Body):
    """What every message of an account's life carries: its idempotency key, and who asked and why."""

    change_id: LineId
    account: Identifier
    author: Text200
    reason: Text500


class AddedSubscription(SubscriptionSpec):
    """A subscription added to an onboarded account; ``start_date`` defaults to today there."""

    start_date: IsoDate | None = None


class AddSubscription(_LifecycleBody):
    """``subscription.add``: a new subscription on the account's bill day."""

    subscription: AddedSubscription


class ChangeSubscription(_LifecycleBody):
    """``subscription.change``: from ``effective_date`` (default today) the new price and plan apply."""

    subscription: LineId
    amount: DecimalText | None = None
    currency: Currency | None = None
    plan: PlanName | None = None
    effective_date: IsoDate | None = None
    proration: Literal["daily", "none"] = "daily"
    invoice_now: bool = False

    @_model_validator(mode="after")
    def _something_changes(self) -> ChangeSubscription:
        if self.amount is None and self.plan is None:
            raise BillingError("amount", "is required unless the plan changes (give amount, plan or both)")
        if self.amount is not None and self.currency is None:
            raise BillingError("currency", "is required with an amount (the account's currency)")
        return self


class PauseSubscription(_LifecycleBody):
    """``subscription.pause``: days in [from, until) cost nothing; without ``until``, until a resume."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)

    subscription: LineId
    starts: IsoDate | None = Field(default=None, alias="from")
    until: IsoDate | None = None

    @_model_validator(mode="after")
    def _until_after_from(self) -> PauseSubscription:
        if self.starts is not None and self.until is not None and self.until <= self.starts:
            raise BillingError("until", f"{self.until} is not after from {self.starts}")
        return self


class ResumeSubscription(_LifecycleBody):
    """``subscription.resume``: the pause ends on ``effective_date`` (default today)."""

    subscription: LineId
    effective_date: IsoDate | None = None


class CancelSubscription(_LifecycleBody):
    """``subscription.cancel``: nothing is billed on or after the end (E, or the current period's end)."""

    subscription: LineId
    effective_date: IsoDate | None = None
    at_period_end: bool = False
    proration: Literal["daily", "none"] = "daily"

    @_model_validator(mode="after")
    def _one_end(self) -> CancelSubscription:
        if self.at_period_end and self.effective_date is not None:
            raise BillingError("at_period_end", "give either effective_date or at_period_end, not both")
        return self


class UpdateAccount(_LifecycleBody):
    """``account.update``: a new bill day (after each current period), invoice grouping, or name."""

    bill_day: Annotated[int, _between(1, 31)] | None = None
    combine_invoices: bool | None = None
    name: Text200 | None = None

    @_model_validator(mode="after")
    def _something_changes(self) -> UpdateAccount:
        if self.bill_day is None and self.combine_invoices is None and self.name is None:
            raise BillingError("bill_day", "nothing to update (give bill_day, combine_invoices or name)")
        return self


LifecycleBody = (AddSubscription | ChangeSubscription | PauseSubscription | ResumeSubscription
                 | CancelSubscription | UpdateAccount)

Body = OnboardAccount | CreateBalanceLine | ReverseBalanceLine | TriggerBillRun | LifecycleBody

BODY_MODELS: dict[str, type[Body]] = {
    "account.onboard": OnboardAccount,
    "balance_line.create": CreateBalanceLine,
    "balance_line.reverse": ReverseBalanceLine,
    "bill_run.trigger": TriggerBillRun,
    "subscription.add": AddSubscription,
    "subscription.change": ChangeSubscription,
    "subscription.pause": PauseSubscription,
    "subscription.resume": ResumeSubscription,
    "subscription.cancel": CancelSubscription,
    "account.update": UpdateAccount,
}


def parse_body(message_type: str, body: object) -> Body:
    """Validate a body for its message type, or raise ``InvalidMessage`` naming the field."""
    model = BODY_MODELS.get(message_type)
    if model is None:
        raise InvalidMessage("type", f"unknown message type {echo(message_type)}")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InvalidMessage.from_validation_error(error, default_field="body") from None
