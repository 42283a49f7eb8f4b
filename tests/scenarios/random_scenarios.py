"""Random simulation scenarios (the acceptance format), reproducible from a ``random.Random``.

Several accounts in time zones with and without daylight saving, at +14 and -12 and at
quarter-hour offsets; monthly, quarterly, yearly and weekly plans, in advance and in arrears,
combined or separate invoices, retroactive starts; balance lines of every kind (expiring credits,
future effective dates, percent discounts, signed adjustments), embedded in the onboarding or
sent later, one that overtakes its account and one whose account never comes; and a few
messages that must be rejected (wrong currency, a credit that expires before it starts, a bad
signature, a different body under a known key). The equivalence test draws them through
hypothesis; the benchmark draws forty from fixed seeds.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

ZONES = (
    "UTC", "Europe/Paris", "America/New_York", "Australia/Sydney", "America/Santiago", "Asia/Kolkata",
    "Asia/Kathmandu", "Pacific/Chatham", "Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Pago_Pago", "Asia/Tokyo",
)
"""DST north and south (Santiago's change is at midnight), +5:30, +5:45, +12:45/+13:45, +14, -12, -11."""

CURRENCIES = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}
PLANS = (("month", 1), ("month", 1), ("month", 3), ("year", 1), ("week", 1), ("week", 2))
CREDIT_KINDS = ("credit", "gift", "referral")


def money(rng: random.Random, currency: str, low: int = 1, high: int = 120) -> str:
    decimals = CURRENCIES[currency]
    whole = rng.randint(low, high) * (100 if decimals == 0 else 1)
    if decimals == 0:
        return str(whole)
    return f"{whole}.{rng.randint(0, 10 ** decimals - 1):0{decimals}d}"


def instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_day(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()


class _Builder:
    def __init__(self, rng: random.Random, start: datetime) -> None:
        self.rng = rng
        self.start = start
        self.messages: list[dict[str, Any]] = []
        self.lines = 0

    def send(self, at: datetime, kind: str, body: dict[str, Any], **extra: Any) -> None:
        self.messages.append({"at": instant(at), "type": kind, "body": body, **extra})

    def line(self, account: str, currency: str, today: date, *, embedded: bool = False) -> dict[str, Any]:
        rng = self.rng
        self.lines += 1
        kind = rng.choice((*CREDIT_KINDS, "credit", "discount", "adjustment"))
        body: dict[str, Any] = {"line_id": f"{account}-l{self.lines}", "kind": kind, "currency": currency,
                                "label": f"{kind} {self.lines}", "reason": "random scenario", "author": "test:sim"}
        if not embedded:
            body["account"] = account
        if kind == "discount" and rng.random() < 0.5:
            body["percent"] = str(rng.choice((5, 10, 12.5, 50, 100)))
        else:
            body["amount"] = money(rng, currency, 1, 60)
        if kind == "adjustment" and rng.random() < 0.6:
            body["amount"] = "-" + body["amount"]
        if rng.random() < 0.25:
            body["effective_date"] = (today + timedelta(days=rng.randint(0, 40))).isoformat()
        credit_like = kind in CREDIT_KINDS or body.get("amount", "").startswith("-")
        if credit_like and rng.random() < 0.5:
            first = date.fromisoformat(body.get("effective_date", today.isoformat()))
            body["expires_on"] = (first + timedelta(days=rng.randint(0, 75))).isoformat()
        return body


def random_scenario(rng: random.Random, *, max_span_days: int, min_span_days: int = 1,
                    accounts: int | None = None) -> dict[str, Any]:
    """One scenario: up to four accounts onboarded over the first weeks, lines and a few bad
    messages among them, and ``until`` ``min_span_days`` to ``max_span_days`` after the first message."""
    start = datetime(rng.randint(2018, 2024), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                     rng.choice((0, 0, 15, 30, 59)), tzinfo=UTC)
    span = rng.randint(min_span_days, max_span_days)
    builder = _Builder(rng, start)
    count = accounts if accounts is not None else rng.randint(1, 4)
    window = max(1, min(span, 40))
    for n in range(count):
        _account(builder, f"acct-{n}", start + timedelta(minutes=rng.randint(0, window * 24 * 60)), span)
    if rng.random() < 0.3:  # a line whose account never comes: rejected unknown_account after the grace
        builder.send(start + timedelta(minutes=rng.randint(0, 600)), "balance_line.create",
                     builder.line("ghost", "USD", start.date()))
    builder.messages.sort(key=lambda message: message["at"])
    last = datetime.fromisoformat(builder.messages[-1]["at"].replace("Z", "+00:00"))
    until = max(last.date(), (start + timedelta(days=span)).date())
    return {"description": "random scenario", "settings": {"combine_invoices": rng.random() < 0.6},
            "until": until.isoformat(), "messages": builder.messages}


def _account(builder: _Builder, account: str, at: datetime, span: int) -> None:
    rng = builder.rng
    zone = rng.choice(ZONES)
    currency = rng.choice(list(CURRENCIES))
    today = local_day(at, zone)
    start_date = today - timedelta(days=rng.choice((0, 0, rng.randint(1, 20), rng.randint(20, 150))))
    subscriptions = []
    for index in range(rng.choice((1, 1, 2))):
        interval, count = rng.choice(PLANS)
        spec: dict[str, Any] = {"plan": f"{interval}{count}-{index}", "amount": money(rng, currency),
                                "interval": interval, "interval_count": count,
                                "timing": rng.choice(("advance", "advance", "arrears")),
                                "proration": rng.choice(("daily", "daily", "full", "none"))}
        if interval == "week" and rng.random() < 0.5:
            spec["bill_weekday"] = rng.randint(1, 7)
        if interval != "week" and count > 1 and rng.random() < 0.3:
            spec["bill_month"] = rng.randint(1, 12)
        subscriptions.append(spec)
    body: dict[str, Any] = {
        "account": {"id": account, "name": f"Account {account}", "currency": currency, "timezone": zone},
        "start_date": start_date.isoformat(),
        "subscriptions": subscriptions,
    }
    if rng.random() < 0.8:
        body["bill_day"] = rng.choice((1, 15, 28, 29, 30, 31, start_date.day))
    if rng.random() < 0.5:
        body["combine_invoices"] = rng.random() < 0.5
    if rng.random() < 0.3:
        body["balance_lines"] = [builder.line(account, currency, today, embedded=True)]
    builder.send(at, "account.onboard", body)
    if rng.random() < 0.3:  # the same message again (a redelivery): changes nothing
        builder.send(at + timedelta(minutes=rng.randint(1, 90)), "account.onboard", body)
    if rng.random() < 0.3:  # a line that overtakes its account by less than the grace period
        builder.send(at - timedelta(minutes=rng.randint(1, 50)), "balance_line.create",
                     builder.line(account, currency, today))
    for _ in range(rng.randint(0, 4)):
        when = at + timedelta(minutes=rng.randint(1, max(2, span * 24 * 60)))
        builder.send(when, "balance_line.create", builder.line(account, currency, local_day(when, zone)))
    if rng.random() < 0.5:
        _bad_message(builder, account, currency, at + timedelta(minutes=rng.randint(1, 3000)), zone)


def _bad_message(builder: _Builder, account: str, currency: str, at: datetime, zone: str) -> None:
    rng = builder.rng
    body = builder.line(account, currency, local_day(at, zone))
    body.pop("percent", None)
    choice = rng.randint(0, 3)
    if choice == 0:  # currency_mismatch
        body["currency"] = next(c for c in CURRENCIES if c != currency)
        body["amount"] = money(rng, body["currency"])
        builder.send(at, "balance_line.create", body)
    elif choice == 1:  # invalid: expires before it starts
        body.update(kind="credit", amount=money(rng, currency), effective_date="2030-01-10", expires_on="2030-01-01")
        builder.send(at, "balance_line.create", body)
    elif choice == 2:  # unauthorized: a forged signature
        body["amount"] = money(rng, currency)
        builder.send(at, "balance_line.create", body, signature="0" * 64)
    else:  # conflict: a known line id with another body
        body.update(kind="credit", amount=money(rng, currency))
        builder.send(at, "balance_line.create", body)
        other = {**body, "amount": money(rng, currency, 200, 300)}
        builder.send(at + timedelta(minutes=5), "balance_line.create", other)
