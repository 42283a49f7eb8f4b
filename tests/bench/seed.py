"""Seeding due accounts fast: ``COPY`` into ``accounts`` and ``subscriptions``.

Every account is already onboarded on a monthly 10.00 USD plan whose bill day is today (UTC),
billed up to today: exactly one period, starting today, is due, so a bill run issues one invoice
with one line per account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from dateutil.relativedelta import relativedelta

from tests.bench.database import connect

PLAN = "bench-monthly"
AMOUNT_MINOR = 1000
CURRENCY = "USD"


@dataclass(frozen=True)
class DueShape:
    """The calendar every seeded account shares."""

    today: date
    bill_day: int
    start_date: date
    next_anchor: date

    @classmethod
    def for_today(cls, today: date) -> DueShape:
        # relativedelta clamps to the month's last day, exactly as anchors derive from the bill day.
        return cls(today=today, bill_day=today.day, start_date=today - relativedelta(months=1),
                   next_anchor=today + relativedelta(months=1))


def account_id(index: int) -> str:
    return f"acct-{index:07d}"


def seed_due_accounts(conninfo: str, count: int, shape: DueShape) -> None:
    """``count`` accounts with one subscription each, one period due on ``shape.today``; then ANALYZE."""
    now = datetime.now(UTC)
    with connect(conninfo, autocommit=False) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY accounts (id, name, currency, timezone, bill_day, combine_invoices, start_date, "
                          "onboarded_on, hold_until, body_hash, created_at) FROM STDIN") as copy:
                for index in range(count):
                    copy.write_row((account_id(index), f"Bench account {index}", CURRENCY, "UTC", shape.bill_day,
                                    None, shape.start_date, shape.start_date, None, "0" * 64, now))
            with cur.copy("COPY subscriptions (account_id, position, key, plan, amount_minor, currency, interval, "
                          "interval_count, timing, proration, bill_day, bill_month, bill_weekday, start_date, "
                          "billed_until, next_bill_date, has_changes) FROM STDIN") as copy:
                for index in range(count):
                    copy.write_row((account_id(index), 0, PLAN, PLAN, AMOUNT_MINOR, CURRENCY, "month", 1, "advance",
                                    "daily", shape.bill_day, None, None, shape.start_date, shape.today,
                                    shape.today, False))
        conn.commit()
    with connect(conninfo) as conn:
        conn.execute("ANALYZE accounts")
        conn.execute("ANALYZE subscriptions")
