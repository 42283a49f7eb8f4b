"""The balance audit trail: refused lines by account, who reversed what and why, a rate-limit index.

``balance_rejections`` indexes refused balance-line and onboarding messages by account (``billing
audit`` no longer searches payload text, which also matched accounts whose id contains the one
asked for); existing rejections are indexed from their stored payloads. Reversal entries record
their producer, author and reason. On PostgreSQL the new table is append-only like the ledger.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACCOUNT_TYPES = ("account.onboard", "balance_line.create", "balance_line.reverse")


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "balance_rejections",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("rejection_id", _id(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=40), nullable=True),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("line_id", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("producer", sa.String(length=100), nullable=True),
        sa.Column("authenticated", sa.Boolean(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rejection_id"], ["rejections.id"], name=op.f("fk_balance_rejections_rejection_id_rejections")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_rejections")),
    )
    op.create_index(op.f("ix_balance_rejections_account_id"), "balance_rejections", ["account_id"])
    op.create_index(op.f("ix_balance_rejections_rejection_id"), "balance_rejections", ["rejection_id"])
    with op.batch_alter_table("balance_entries") as batch:
        batch.add_column(sa.Column("producer", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("author", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(length=500), nullable=True))
    op.create_index("ix_balance_lines_producer_created_at", "balance_lines", ["producer", "created_at"])
    _index_existing_rejections()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER balance_rejections_append_only BEFORE UPDATE OR DELETE ON balance_rejections "
            "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
        )


def _account_of(payload: str) -> tuple[str | None, str | None]:
    """The account id and message id a stored (redacted) payload names, when it names one."""
    try:
        document = json.loads(payload)
    except ValueError:  # payloads are cut at 64 KiB: a long one may not parse
        return None, None
    if not isinstance(document, dict) or document.get("type") not in _ACCOUNT_TYPES:
        return None, None
    body = document.get("body")
    account = body.get("account") if isinstance(body, dict) else None
    if isinstance(account, dict):
        account = account.get("id")
    message_id = document.get("id") if isinstance(document.get("id"), str) else None
    if isinstance(account, str) and 0 < len(account) <= 64:
        return account, message_id
    return None, None


def _index_existing_rejections() -> None:
    """One unauthenticated audit row per earlier rejection that names an account (no author: unknown)."""
    bind = op.get_bind()
    rejections = sa.table(
        "rejections", sa.column("id", _id()), sa.column("message_type", sa.String()),
        sa.column("producer", sa.String()), sa.column("payload", sa.Text()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    audit = sa.table(
        "balance_rejections", sa.column("rejection_id", _id()), sa.column("account_id", sa.String()),
        sa.column("message_type", sa.String()), sa.column("message_id", sa.String()),
        sa.column("producer", sa.String()), sa.column("authenticated", sa.Boolean()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    rows = []
    for row in bind.execute(sa.select(rejections)).mappings():
        account, message_id = _account_of(row["payload"])
        if account is not None:
            rows.append({"rejection_id": row["id"], "account_id": account, "message_type": row["message_type"],
                         "message_id": message_id, "producer": row["producer"], "authenticated": False,
                         "created_at": row["created_at"]})
    if rows:
        bind.execute(sa.insert(audit), rows)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS balance_rejections_append_only ON balance_rejections")
    op.drop_index("ix_balance_lines_producer_created_at", table_name="balance_lines")
    with op.batch_alter_table("balance_entries") as batch:
        batch.drop_column("reason")
        batch.drop_column("author")
        batch.drop_column("producer")
    op.drop_index(op.f("ix_balance_rejections_rejection_id"), table_name="balance_rejections")
    op.drop_index(op.f("ix_balance_rejections_account_id"), table_name="balance_rejections")
    op.drop_table("balance_rejections")
