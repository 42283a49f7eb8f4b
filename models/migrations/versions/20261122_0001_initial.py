"""Initial schema: accounts, subscriptions, invoices, the balance ledger, messages, outbox, bill runs.

On PostgreSQL the ledger tables (balance_lines, balance_entries, balance_line_decisions) are made
append-only by triggers: UPDATE and DELETE raise. TRUNCATE is deliberately not covered (test
clean-up and operator resets use it). SQLite has no such guard; the code never updates them.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER_TABLES = ("balance_lines", "balance_entries", "balance_line_decisions")


def _id() -> sa.types.TypeEngine[int]:
    """64-bit on PostgreSQL; INTEGER on SQLite, the only type that autoincrements there."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _pk() -> sa.Column[int]:
    return sa.Column("id", _id(), autoincrement=True, nullable=False)


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), server_default="0", nullable=False)


def upgrade() -> None:
    _create_independent_tables()
    _create_account_tables()
    _create_billing_tables()
    if op.get_bind().dialect.name == "postgresql":
        _create_append_only_triggers()


def _create_independent_tables() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("bill_day", sa.SmallInteger(), nullable=False),
        sa.Column("combine_invoices", sa.Boolean(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("onboarded_on", sa.Date(), nullable=False),
        sa.Column("hold_until", sa.Date(), nullable=True),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("bill_day BETWEEN 1 AND 31", name=op.f("ck_accounts_bill_day")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "bill_runs",
        _pk(),
        sa.Column("run_date", sa.Date(), nullable=True),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        _ts("requested_at"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        _counter("accounts_due"),
        _counter("invoiced"),
        _counter("skipped"),
        _counter("failed"),
        sa.CheckConstraint("status IN ('running', 'finished', 'failed')", name=op.f("ck_bill_runs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_runs")),
    )
    op.create_table(
        "invoice_counters",
        sa.Column("series", sa.String(length=40), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("last_number >= 0", name=op.f("ck_invoice_counters_last_number")),
        sa.PrimaryKeyConstraint("series", name=op.f("pk_invoice_counters")),
    )
    op.create_table(
        "message_deliveries",
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=40), nullable=False),
        sa.Column("broker_message_id", sa.String(length=64), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        _ts("first_seen_at"),
        _ts("last_seen_at"),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_deliveries")),
    )
    op.create_table(
        "outbox",
        _pk(),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _ts("created_at"),
        _ts("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at", "id"], unique=False)
    op.create_table(
        "parked_messages",
        _pk(),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=40), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        _ts("first_seen_at"),
        _ts("retry_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parked_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_parked_messages_message_id")),
    )
    op.create_index(op.f("ix_parked_messages_account_id"), "parked_messages", ["account_id"])
    op.create_index(op.f("ix_parked_messages_retry_at"), "parked_messages", ["retry_at"])
    op.create_table(
        "processed_messages",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("message_type", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        _ts("processed_at"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_processed_messages")),
    )
    op.create_table(
        "rejections",
        _pk(),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("message_type", sa.String(length=40), nullable=True),
        sa.Column("producer", sa.String(length=100), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _ts("created_at"),
        _ts("replayed_at", nullable=True),
        sa.Column("replay_message_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejections")),
    )
    op.create_index(op.f("ix_rejections_code"), "rejections", ["code"])
    op.create_index(op.f("ix_rejections_created_at"), "rejections", ["created_at"])
    op.create_index(op.f("ix_rejections_message_id"), "rejections", ["message_id"])


def _create_account_tables() -> None:
    op.create_table(
        "subscriptions",
        _pk(),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("plan", sa.String(length=100), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("interval_count", sa.SmallInteger(), nullable=False),
        sa.Column("timing", sa.String(length=8), nullable=False),
        sa.Column("proration", sa.String(length=8), nullable=False),
        sa.Column("bill_day", sa.SmallInteger(), nullable=False),
        sa.Column("bill_month", sa.SmallInteger(), nullable=True),
        sa.Column("bill_weekday", sa.SmallInteger(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("billed_until", sa.Date(), nullable=True),
        sa.Column("next_bill_date", sa.Date(), nullable=True),
        sa.CheckConstraint("interval IN ('month', 'year', 'week')", name=op.f("ck_subscriptions_interval")),
        sa.CheckConstraint("interval_count BETWEEN 1 AND 120", name=op.f("ck_subscriptions_interval_count")),
        sa.CheckConstraint("timing IN ('advance', 'arrears')", name=op.f("ck_subscriptions_timing")),
        sa.CheckConstraint("proration IN ('daily', 'full', 'none')", name=op.f("ck_subscriptions_proration")),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_subscriptions_amount_minor")),
        sa.CheckConstraint("bill_day BETWEEN 1 AND 31", name=op.f("ck_subscriptions_bill_day")),
        sa.CheckConstraint(
            "bill_month IS NULL OR bill_month BETWEEN 1 AND 12", name=op.f("ck_subscriptions_bill_month")
        ),
        sa.CheckConstraint(
            "bill_weekday IS NULL OR bill_weekday BETWEEN 1 AND 7",
            name=op.f("ck_subscriptions_bill_weekday"),
        ),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_subscriptions_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("account_id", "position", name=op.f("uq_subscriptions_account_id_position")),
    )
    op.create_index("ix_subscriptions_next_bill_date", "subscriptions", ["next_bill_date", "account_id"])
    op.create_table(
        "balance_lines",
        _pk(),
        sa.Column("line_id", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("percent", sa.Numeric(precision=7, scale=4), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("producer", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("requires_approval", sa.Boolean(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint(
            "kind IN ('credit', 'gift', 'referral', 'discount', 'adjustment')",
            name=op.f("ck_balance_lines_kind"),
        ),
        sa.CheckConstraint(
            "(amount_minor IS NULL) <> (percent IS NULL)",
            name=op.f("ck_balance_lines_amount_xor_percent"),
        ),
        sa.CheckConstraint(
            "amount_minor IS NULL OR amount_minor > 0 OR (kind = 'adjustment' AND amount_minor <> 0)",
            name=op.f("ck_balance_lines_amount_sign"),
        ),
        sa.CheckConstraint(
            "percent IS NULL OR (kind = 'discount' AND percent > 0 AND percent <= 100)",
            name=op.f("ck_balance_lines_percent"),
        ),
        sa.CheckConstraint("expires_on IS NULL OR expires_on >= effective_date", name=op.f("ck_balance_lines_expiry")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_balance_lines_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_lines")),
        sa.UniqueConstraint("line_id", name=op.f("uq_balance_lines_line_id")),
    )
    op.create_index(op.f("ix_balance_lines_account_id"), "balance_lines", ["account_id"])
    op.create_table(
        "balance_line_decisions",
        _pk(),
        sa.Column("balance_line_id", _id(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("identity", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("decision IN ('approved', 'declined')", name=op.f("ck_balance_line_decisions_decision")),
        sa.ForeignKeyConstraint(
            ["balance_line_id"],
            ["balance_lines.id"],
            name=op.f("fk_balance_line_decisions_balance_line_id_balance_lines"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_line_decisions")),
    )
    op.create_index(op.f("ix_balance_line_decisions_balance_line_id"), "balance_line_decisions", ["balance_line_id"])


def _create_billing_tables() -> None:
    op.create_table(
        "bill_run_failures",
        _pk(),
        sa.Column("bill_run_id", _id(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["bill_run_id"], ["bill_runs.id"], name=op.f("fk_bill_run_failures_bill_run_id_bill_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_run_failures")),
    )
    op.create_index(op.f("ix_bill_run_failures_bill_run_id"), "bill_run_failures", ["bill_run_id"])
    op.create_table(
        "invoices",
        _pk(),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("credit_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("bill_run_id", _id(), nullable=True),
        _ts("created_at"),
        sa.CheckConstraint("total_minor >= 0", name=op.f("ck_invoices_total_minor")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_invoices_account_id_accounts")),
        sa.ForeignKeyConstraint(["bill_run_id"], ["bill_runs.id"], name=op.f("fk_invoices_bill_run_id_bill_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
    )
    op.create_index(op.f("ix_invoices_account_id"), "invoices", ["account_id"])
    op.create_table(
        "invoice_lines",
        _pk(),
        sa.Column("invoice_id", _id(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subscription_id", _id(), nullable=True),
        sa.Column("plan", sa.String(length=100), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("days", sa.SmallInteger(), nullable=True),
        sa.Column("period_days", sa.SmallInteger(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("balance_line_id", _id(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('recurring', 'credit', 'gift', 'referral', 'discount', 'adjustment')",
            name=op.f("ck_invoice_lines_kind"),
        ),
        sa.CheckConstraint(
            "(kind = 'recurring' AND subscription_id IS NOT NULL AND period_start IS NOT NULL"
            " AND period_end IS NOT NULL AND balance_line_id IS NULL)"
            " OR (kind <> 'recurring' AND balance_line_id IS NOT NULL)",
            name=op.f("ck_invoice_lines_refs"),
        ),
        sa.CheckConstraint("period_end >= period_start", name=op.f("ck_invoice_lines_period")),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_lines_invoice_id_invoices")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_invoice_lines_subscription_id_subscriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["balance_line_id"],
            ["balance_lines.id"],
            name=op.f("fk_invoice_lines_balance_line_id_balance_lines"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
        sa.UniqueConstraint(
            "subscription_id", "period_start", name=op.f("uq_invoice_lines_subscription_id_period_start")
        ),
        sa.UniqueConstraint("invoice_id", "position", name=op.f("uq_invoice_lines_invoice_id_position")),
    )
    op.create_index(op.f("ix_invoice_lines_balance_line_id"), "invoice_lines", ["balance_line_id"])
    op.create_table(
        "balance_entries",
        _pk(),
        sa.Column("balance_line_id", _id(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("invoice_id", _id(), nullable=True),
        sa.Column("invoice_line_id", _id(), nullable=True),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        _ts("created_at"),
        sa.CheckConstraint("kind IN ('applied', 'lapsed', 'reversed')", name=op.f("ck_balance_entries_kind")),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_balance_entries_amount_minor")),
        sa.ForeignKeyConstraint(
            ["balance_line_id"],
            ["balance_lines.id"],
            name=op.f("fk_balance_entries_balance_line_id_balance_lines"),
        ),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_balance_entries_invoice_id_invoices")),
        sa.ForeignKeyConstraint(
            ["invoice_line_id"],
            ["invoice_lines.id"],
            name=op.f("fk_balance_entries_invoice_line_id_invoice_lines"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_entries")),
    )
    op.create_index(op.f("ix_balance_entries_balance_line_id"), "balance_entries", ["balance_line_id"])


def _create_append_only_triggers() -> None:
    op.execute(
        """
        CREATE FUNCTION ledger_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the ledger is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
                USING HINT = 'record a new balance line or balance entry instead';
        END
        $$
        """
    )
    for table in LEDGER_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in LEDGER_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ledger_append_only()")
    op.drop_table("balance_entries")
    op.drop_table("invoice_lines")
    op.drop_table("invoices")
    op.drop_table("bill_run_failures")
    op.drop_table("balance_line_decisions")
    op.drop_table("balance_lines")
    op.drop_table("subscriptions")
    op.drop_table("rejections")
    op.drop_table("processed_messages")
    op.drop_table("parked_messages")
    op.drop_table("outbox")
    op.drop_table("message_deliveries")
    op.drop_table("invoice_counters")
    op.drop_table("bill_runs")
    op.drop_table("accounts")
