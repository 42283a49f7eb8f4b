"""Second-identity decisions on balance lines above the approval threshold (append-only)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created, IntPK


class BalanceLineDecision(Base):
    """An approval or a decline; the latest decision of a line wins, none is ever rewritten."""

    __tablename__ = "balance_line_decisions"
    __table_args__ = (CheckConstraint("decision IN ('approved', 'declined')", name="decision"),)

    id: Mapped[IntPK]
    balance_line_id: Mapped[int] = mapped_column(ForeignKey("balance_lines.id"), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    identity: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[Created]
