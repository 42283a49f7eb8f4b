"""The account's life after onboarding: subscription ids, their changes, and lines that re-rate periods.

Subscriptions get a ``key`` (their id within the account; existing rows take their plan, or
plan-position where an account has the plan twice), ``has_changes``, ``recheck_from`` and
``settle_on``; ``subscription_changes`` records every change, pause, resume, cancellation and
bill-day move. Invoice lines gain the billed period they belong to and the per-period rate they
bill (existing recurring lines: their own range, at their subscription's price), and a
``proration`` kind; only recurring lines stay unique per (subscription, range start).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KINDS = "kind IN ('recurring', 'credit', 'gift', 'referral', 'discount', 'adjustment')"
_NEW_KINDS = "kind IN ('recurring', 'proration', 'credit', 'gift', 'referral', 'discount', 'adjustment')"
_OLD_REFS = (
    "(kind = 'recurring' AND subscription_id IS NOT NULL AND period_start IS NOT NULL"
    " AND period_end IS NOT NULL AND balance_line_id IS NULL)"
    " OR (kind <> 'recurring' AND balance_line_id IS NOT NULL)"
)
_NEW_REFS = (
    "(kind IN ('recurring', 'proration') AND subscription_id IS NOT NULL AND period_start IS NOT NULL"
    " AND period_end IS NOT NULL AND balance_line_id IS NULL)"
    " OR (kind NOT IN ('recurring', 'proration') AND balance_line_id IS NOT NULL)"
)


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("key", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("has_changes", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("recheck_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("settle_on", sa.Date(), nullable=True))
    op.execute(
        "UPDATE subscriptions SET key = CASE WHEN (SELECT count(*) FROM subscriptions AS twin"
        " WHERE twin.account_id = subscriptions.account_id AND twin.plan = subscriptions.plan) > 1"
        " THEN plan || '-' || CAST(position AS VARCHAR) ELSE plan END"
    )
    with op.batch_alter_table("subscriptions") as batch:
        batch.alter_column("key", existing_type=sa.String(length=100), nullable=False)
        batch.alter_column("has_changes", existing_type=sa.Boolean(), server_default=None)
        batch.create_unique_constraint(op.f("uq_subscriptions_account_id_key"), ["account_id", "key"])

    op.create_table(
        "subscription_changes",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", _id(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("change_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("effective", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("plan", sa.String(length=100), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("bill_day", sa.SmallInteger(), nullable=True),
        sa.Column("message_type", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("producer", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('change', 'pause', 'resume', 'cancel', 'bill_day')",
                           name=op.f("ck_subscription_changes_kind")),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"],
                                name=op.f("fk_subscription_changes_subscription_id_subscriptions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_changes")),
    )
    op.create_index(op.f("ix_subscription_changes_subscription_id"), "subscription_changes", ["subscription_id"])
    op.create_index(op.f("ix_subscription_changes_account_id"), "subscription_changes", ["account_id"])

    with op.batch_alter_table("invoice_lines") as batch:
        batch.add_column(sa.Column("billing_period_start", sa.Date(), nullable=True))
        batch.add_column(sa.Column("billing_period_end", sa.Date(), nullable=True))
        batch.add_column(sa.Column("rate_minor", sa.BigInteger(), nullable=True))
        batch.drop_constraint(op.f("uq_invoice_lines_subscription_id_period_start"), type_="unique")
        batch.drop_constraint(op.f("ck_invoice_lines_kind"), type_="check")
        batch.drop_constraint(op.f("ck_invoice_lines_refs"), type_="check")
        batch.create_check_constraint(op.f("ck_invoice_lines_kind"), _NEW_KINDS)
        batch.create_check_constraint(op.f("ck_invoice_lines_refs"), _NEW_REFS)
    op.execute(
        "UPDATE invoice_lines SET billing_period_start = period_start, billing_period_end = period_end,"
        " rate_minor = (SELECT amount_minor FROM subscriptions WHERE subscriptions.id = invoice_lines.subscription_id)"
        " WHERE kind = 'recurring'"
    )
    op.create_index("ix_invoice_lines_recurring_range", "invoice_lines", ["subscription_id", "period_start"],
                    unique=True, postgresql_where=sa.text("kind = 'recurring'"),
                    sqlite_where=sa.text("kind = 'recurring'"))


def downgrade() -> None:
    op.drop_index("ix_invoice_lines_recurring_range", table_name="invoice_lines")
    op.execute("DELETE FROM invoice_lines WHERE kind = 'proration'")
    with op.batch_alter_table("invoice_lines") as batch:
        batch.drop_constraint(op.f("ck_invoice_lines_refs"), type_="check")
        batch.drop_constraint(op.f("ck_invoice_lines_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_invoice_lines_kind"), _OLD_KINDS)
        batch.create_check_constraint(op.f("ck_invoice_lines_refs"), _OLD_REFS)
        batch.create_unique_constraint(op.f("uq_invoice_lines_subscription_id_period_start"),
                                       ["subscription_id", "period_start"])
        batch.drop_column("rate_minor")
        batch.drop_column("billing_period_end")
        batch.drop_column("billing_period_start")
    op.drop_index(op.f("ix_subscription_changes_account_id"), table_name="subscription_changes")
    op.drop_index(op.f("ix_subscription_changes_subscription_id"), table_name="subscription_changes")
    op.drop_table("subscription_changes")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_constraint(op.f("uq_subscriptions_account_id_key"), type_="unique")
        batch.drop_column("settle_on")
        batch.drop_column("recheck_from")
        batch.drop_column("has_changes")
        batch.drop_column("key")
