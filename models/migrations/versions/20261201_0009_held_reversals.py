"""Reversals held for approval: ``balance_line_reversals`` and their ``reversal_decisions``.

A ``balance_line.reverse`` above its producer's approval threshold used to be refused; now it is
held, like a line. ``balance_line_reversals`` records each held reversal (what it asked: the line's
remainder when it arrived); ``reversal_decisions`` the one approval or decline of each, with what
an approval took from the line. Decisions on reversals get their own table rather than rows in
``balance_line_decisions``, which say whether a line is active. On PostgreSQL both tables are
append-only like the rest of the ledger.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("balance_line_reversals", "reversal_decisions")


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "balance_line_reversals",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("reversal_id", sa.String(length=100), nullable=False),
        sa.Column("balance_line_id", _id(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("producer", sa.String(length=100), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_balance_line_reversals_amount_minor")),
        sa.ForeignKeyConstraint(["balance_line_id"], ["balance_lines.id"],
                                name=op.f("fk_balance_line_reversals_balance_line_id_balance_lines")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_balance_line_reversals_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_line_reversals")),
        sa.UniqueConstraint("reversal_id", name=op.f("uq_balance_line_reversals_reversal_id")),
    )
    op.create_index(op.f("ix_balance_line_reversals_balance_line_id"), "balance_line_reversals", ["balance_line_id"])
    op.create_index(op.f("ix_balance_line_reversals_account_id"), "balance_line_reversals", ["account_id"])
    op.create_table(
        "reversal_decisions",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("reversal_id", sa.String(length=100), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("identity", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("applied_minor", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("decision IN ('approved', 'declined')", name=op.f("ck_reversal_decisions_decision")),
        sa.CheckConstraint(
            "(decision = 'approved' AND applied_minor >= 0) OR (decision = 'declined' AND applied_minor IS NULL)",
            name=op.f("ck_reversal_decisions_applied_minor"),
        ),
        sa.ForeignKeyConstraint(["reversal_id"], ["balance_line_reversals.reversal_id"],
                                name=op.f("fk_reversal_decisions_reversal_id_balance_line_reversals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reversal_decisions")),
        sa.UniqueConstraint("reversal_id", name=op.f("uq_reversal_decisions_reversal_id")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in _TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in reversed(_TABLES):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.drop_table("reversal_decisions")
    op.drop_index(op.f("ix_balance_line_reversals_account_id"), table_name="balance_line_reversals")
    op.drop_index(op.f("ix_balance_line_reversals_balance_line_id"), table_name="balance_line_reversals")
    op.drop_table("balance_line_reversals")
