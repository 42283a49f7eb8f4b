"""The invoice as JSON: the shape of events, `billing preview` and `billing simulate`.

Amounts are decimal strings in major units with the currency's own decimals; periods are shown
with inclusive ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from models.billing.composition import InvoiceDraft
from models.billing.money import format_amount

JSONDict = dict[str, Any]


def recurring_line(
    plan: str, start: date, last_day: date, days: int, period_days: int, amount_minor: int, currency: str,
    kind: str = "recurring",
) -> JSONDict:
    """A line of a subscription's period: ``recurring``, or a ``proration`` correcting billed days."""
    return {
        "kind": kind,
        "plan": plan,
        "period_start": start.isoformat(),
        "period_end": last_day.isoformat(),
        "days": days,
        "period_days": period_days,
        "amount": format_amount(amount_minor, currency),
    }


def balance_line(kind: str, line_id: str, amount_minor: int, currency: str) -> JSONDict:
    return {"kind": kind, "balance_line": line_id, "amount": format_amount(amount_minor, currency)}


def draft_lines(draft: InvoiceDraft, currency: str) -> list[JSONDict]:
    """Recurring lines in date order, proration lines, then what the balance did to the invoice."""
    lines = [
        recurring_line(c.plan, c.start, c.last_day, c.days, c.period_days, c.amount_minor, currency, str(c.kind))
        for c in draft.charges
    ]
    lines += [
        balance_line(m.kind, m.line_id, m.invoice_amount_minor, currency)
        for m in draft.balance
        if m.invoice_amount_minor
    ]
    return lines


def invoice_document(
    *,
    number: str | None,
    account: str,
    issue_date: date,
    currency: str,
    lines: Sequence[JSONDict],
    totals: Iterable[tuple[str, int]],
) -> JSONDict:
    document: JSONDict = {"number": number, "account": account, "issue_date": issue_date.isoformat(),
                          "currency": currency}
    document.update({name: format_amount(value, currency) for name, value in totals})
    document["lines"] = list(lines)
    return document


def draft_document(draft: InvoiceDraft, *, number: str | None, account: str, currency: str) -> JSONDict:
    totals = [
        ("subtotal", draft.subtotal_minor),
        ("discount", draft.discount_minor),
        ("credit", draft.credit_minor),
        ("total", draft.total_minor),
    ]
    return invoice_document(
        number=number, account=account, issue_date=draft.issue_date, currency=currency,
        lines=draft_lines(draft, currency), totals=totals,
    )
