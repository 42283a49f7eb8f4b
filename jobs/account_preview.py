"""The next invoice of a stored account, with a proposed change applied, written nowhere.

Stripe's upcoming invoice with proration preview, Kill Bill's dry run: the change runs through its
real handler (so its checks and amounts are the ones the worker would apply), the account is then
composed on the day its next invoice falls due, and the transaction is rolled back. What the
change would issue at once (``invoice_now``, a cancellation's credit) comes first.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobs.bills import Lifecycle, compose_bill
from jobs.clock import local_date
from jobs.context import JobContext
from jobs.envelope import Envelope
from jobs.errors import Rejected
from jobs.handlers import HANDLERS
from jobs.invoice_json import JSONDict, draft_document
from jobs.invoice_listing import documents_of
from jobs.lifecycle import ADD, CANCEL, CHANGE, PAUSE, RESUME, UPDATE
from jobs.pipeline import Received
from jobs.schemas import parse_body
from models.billing.errors import BillingError
from models.tables.account import Account
from models.tables.invoice import Invoice
from models.tables.mapping import load_billed_of, load_changes_of, load_subscriptions_of, open_balance_lines
from models.tables.subscription import Subscription

CHANGE_TYPES = (ADD, CHANGE, PAUSE, RESUME, CANCEL, UPDATE)


class PreviewError(ValueError):
    """The account or the proposed change cannot be previewed; the message says why."""


def read_change(path: Path) -> tuple[str, dict[str, Any]]:
    """A change file: ``{"type": "subscription.change", "body": {...}}``."""
    try:
        document = json.loads(path.read_text(), parse_float=lambda text: _refuse(text))
    except OSError as exc:
        raise PreviewError(f"{path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise PreviewError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict) or document.get("type") not in CHANGE_TYPES or not isinstance(
            document.get("body"), dict):
        raise PreviewError(f"{path}: expected {{\"type\": one of {', '.join(CHANGE_TYPES)}, \"body\": {{...}}}}")
    return str(document["type"]), document["body"]


def _refuse(text: str) -> Any:
    raise PreviewError(f"{text} is a JSON number with a fraction: amounts must be decimal strings")


def preview_account(ctx: JobContext, account_id: str, change: tuple[str, dict[str, Any]] | None,
                    as_of: date | None) -> JSONDict:
    """The invoices the account would get next (with ``change`` applied); nothing is written."""
    session = ctx.sessions()
    try:
        account = session.get(Account, account_id)
        if account is None:
            raise PreviewError(f"account {account_id!r} is not onboarded")
        now = ctx.now() if as_of is None else datetime.combine(as_of, time(12), ZoneInfo(account.timezone))
        today = local_date(now, account.timezone)
        issued_at_once = _apply(ctx, session, account, change, now) if change else []
        due_on = _next_due(session, account_id, today)
        invoices = issued_at_once or (_compose(ctx, session, account, due_on) if due_on is not None else [])
        return {"account": account_id, "as_of": today.isoformat(),
                "next_invoice_on": invoices[0]["issue_date"] if invoices else None, "invoices": invoices}
    finally:
        session.rollback()
        session.close()


def _apply(ctx: JobContext, session: Session, account: Account, change: tuple[str, dict[str, Any]],
           now: datetime) -> list[JSONDict]:
    """Run the change's handler in this (never committed) transaction; what it issued at once."""
    message_type, body = change
    body = {"account": account.id, "change_id": f"preview-{uuid.uuid4().hex}", "author": "preview",
            "reason": "preview", **body}
    envelope = Envelope(type=message_type, id=uuid.uuid4().hex, producer="preview", key_id="preview",
                        sent_at=now, body=body, signature="preview")
    before = session.scalar(select(func.coalesce(func.max(Invoice.id), 0)))
    try:
        HANDLERS[message_type](ctx, session, Received(envelope, dict(envelope.model_dump()), now),
                               parse_body(message_type, body))
    except (Rejected, BillingError) as exc:
        raise PreviewError(f"{message_type} would be rejected: {exc}") from None
    rows = session.scalars(select(Invoice).where(Invoice.account_id == account.id, Invoice.id > before)
                           .order_by(Invoice.id)).all()
    return documents_of(session, rows)


def _next_due(session: Session, account_id: str, today: date) -> date | None:
    found = session.scalar(select(func.min(Subscription.next_bill_date)).where(Subscription.account_id == account_id))
    return None if found is None else max(found, today)


def _compose(ctx: JobContext, session: Session, account: Account, on: date) -> list[JSONDict]:
    rows = load_subscriptions_of(session, [account.id]).get(account.id, [])
    recheck = {row.id: row.recheck_from for row in rows if row.recheck_from is not None}
    lifecycle = Lifecycle(changes=load_changes_of(session, [row.id for row in rows if row.has_changes]),
                          billed=load_billed_of(session, recheck))
    bill = compose_bill(account, rows, open_balance_lines(session, account.id), on, settings=ctx.settings,
                        lifecycle=lifecycle)
    return [draft_document(draft, number=None, account=account.id, currency=account.currency)
            for draft in bill.invoices]
