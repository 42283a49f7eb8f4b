"""``account.onboard``: create the account and its subscriptions, then bill the catch-up at once."""

from __future__ import annotations

from typing import Any

import dramatiq
from sqlalchemy.orm import Session

import worker.broker  # noqa: F401 - installs the broker before the actors below are declared
from jobs import idempotency, ledger, parking, runtime
from jobs.canonical import body_hash
from jobs.invoicing import bill_account
from jobs.receiving import Received, receive
from jobs.schemas import OnboardAccount
from models.tables.account import Account
from models.tables.subscription import Subscription
from worker.clock import local_date
from worker.db import lock_account
from worker.settings import get_settings

MESSAGE_TYPE = "account.onboard"


def handle_onboard_account(session: Session, received: Received, body: OnboardAccount) -> str:
    settings = runtime.get().settings
    info = body.account
    lock_account(session, info.id)
    key = f"{MESSAGE_TYPE}:{info.id}"
    digest = body_hash(received.envelope.body)
    if idempotency.seen(session, key, digest, f"the onboarding of account {info.id}"):
        return "duplicate"
    today = local_date(received.now, info.timezone)
    account = Account(
        id=info.id, name=info.name, currency=info.currency, timezone=info.timezone,
        bill_day=body.effective_bill_day, combine_invoices=body.combine_invoices,
        start_date=body.start_date, onboarded_on=today, hold_until=None, body_hash=digest,
        created_at=received.now,
    )
    session.add(account)
    for position, spec in enumerate(body.subscriptions):
        session.add(Subscription(
            account_id=info.id, position=position, plan=spec.plan, amount_minor=spec.amount_minor,
            currency=info.currency, interval=spec.interval, interval_count=spec.interval_count,
            timing=spec.timing, proration=spec.proration, bill_day=body.effective_bill_day,
            bill_month=spec.bill_month, bill_weekday=spec.bill_weekday, start_date=body.start_date,
            billed_until=None, next_bill_date=body.start_date,
        ))
    raw_lines: list[Any] = list(received.envelope.body.get("balance_lines") or [])
    ledger.grant_embedded(session, account, received, body.balance_lines, raw_lines, today)  # the producer's limits
    session.flush()
    bill_account(session, account, today, settings=settings, now=received.now, onboarding=True)
    idempotency.remember(session, key, message_type=MESSAGE_TYPE, message_id=received.envelope.id,
                         body_hash=digest, outcome="processed", now=received.now)
    return "processed"


@dramatiq.actor(
    actor_name="onboarding.onboard_account",
    queue_name="onboarding",
    max_retries=get_settings().max_retries,
)
def onboard_account(envelope: Any) -> None:
    outcome = receive(MESSAGE_TYPE, envelope, handle_onboard_account)
    if outcome == "processed" and isinstance(envelope, dict):
        account_id = (envelope.get("body") or {}).get("account", {}).get("id")
        rt = runtime.get()
        parking.resume(rt.sessions, onboard_account.broker, str(account_id))
