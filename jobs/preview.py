"""`billing preview`: the invoices an onboarding body would produce, without any database.

Stripe calls it the upcoming invoice, Kill Bill a dry run: the same pure core as the worker, fed
from the message body instead of tables.
"""

from __future__ import annotations

import json
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

from jobs.clock import Clock, local_date
from jobs.errors import Rejected
from jobs.invoice_json import draft_document
from jobs.schemas import OnboardAccount, parse_body
from jobs.settings import JobSettings
from models.billing.balance import BalanceKind, OpenBalanceLine
from models.billing.calendar import Cadence, IntervalUnit
from models.billing.composition import SubscriptionTerms, Timing, compose
from models.billing.errors import BillingError
from models.billing.proration import Proration


class PreviewError(ValueError):
    """Bad input, with the field and the reason."""


def _refuse_float(text: str) -> Any:
    raise PreviewError(f"{text} is a JSON number with a fraction: amounts must be decimal strings")


def subscription_terms(body: OnboardAccount) -> list[SubscriptionTerms]:
    return [
        SubscriptionTerms(
            key=str(position), plan=spec.plan, amount_minor=spec.amount_minor,
            cadence=Cadence(IntervalUnit(spec.interval), spec.interval_count, body.effective_bill_day,
                            spec.bill_month, spec.bill_weekday),
            start_date=body.start_date, timing=Timing(spec.timing), proration=Proration(spec.proration),
            position=position,
        )
        for position, spec in enumerate(body.subscriptions)
    ]


def balance_lines(body: OnboardAccount, today: date) -> list[OpenBalanceLine]:
    return [
        OpenBalanceLine(
            line_id=spec.line_id, kind=BalanceKind(spec.kind), sequence=index,
            effective_date=spec.effective_date or today, remaining_minor=spec.amount_minor or 0,
            percent=Fraction(spec.percent_value) if spec.percent_value is not None else None,
            expires_on=spec.expires_on,
        )
        for index, spec in enumerate(body.balance_lines)
    ]


def preview_body(raw: object, as_of: date | None, settings: JobSettings, clock: Clock) -> dict[str, Any]:
    try:
        body = parse_body("account.onboard", raw)
        assert isinstance(body, OnboardAccount)
        today = as_of or local_date(clock.now(), body.account.timezone)
        combine = settings.combine_invoices if body.combine_invoices is None else body.combine_invoices
        composition = compose(subscription_terms(body), balance_lines(body, today), today, combine=combine,
                              onboarding=True, max_catch_up=settings.max_catch_up_periods)
    except (Rejected, BillingError, OverflowError) as exc:
        raise PreviewError(str(exc)) from None
    invoices = [draft_document(draft, number=None, account=body.account.id, currency=body.account.currency)
                for draft in composition.invoices]
    document: dict[str, Any] = {"as_of": today.isoformat(), "invoices": invoices}
    if composition.hold_until:
        document["next_invoices_on"] = composition.hold_until.isoformat()
    return document


def preview_file(path: Path, as_of: date | None, settings: JobSettings, clock: Clock) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(), parse_float=_refuse_float)
    except OSError as exc:
        raise PreviewError(f"{path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise PreviewError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(raw, dict) and raw.get("type") == "account.onboard" and "body" in raw:
        raw = raw["body"]
    return preview_body(raw, as_of, settings, clock)
