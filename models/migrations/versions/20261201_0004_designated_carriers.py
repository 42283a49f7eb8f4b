"""A kept envelope re-sent by the worker gets a designated carrier beside its first one.

The original broker message of a parked line may still be redelivered after the line was re-sent
(its worker was killed before acknowledging it): both carriers are legitimate, any other copy is a
replay.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message_deliveries") as batch:
        batch.add_column(sa.Column("resent_broker_message_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message_deliveries") as batch:
        batch.drop_column("resent_broker_message_id")
