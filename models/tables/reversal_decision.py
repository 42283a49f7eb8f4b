"""Second-identity decisions on reversals held for approval (append-only).

A table of its own rather than rows in ``balance_line_decisions``: those decide whether a *line*
is active (``models.tables.mapping`` reads them to apply a held line), and a decision on a
reversal of that line must never read as one on the line itself.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.tables.base import Base, Created, IntPK


class ReversalDecision(Base):
    """An approval or a decline of one held reversal; at most one per reversal (the first is final).

    ``applied_minor`` is what an approval took from the line (0 when nothing was left of it);
    a decline has none.
    """

    __tablename__ = "reversal_decisions"
    __table_args__ = (
        CheckConstraint("decision IN ('approved', 'declined')", name="decision"),
        CheckConstraint(
            "(decision = 'approved' AND applied_minor >= 0) OR (decision = 'declined' AND applied_minor IS NULL)",
            name="applied_minor",
        ),
    )

    id: Mapped[IntPK]
    reversal_id: Mapped[str] = mapped_column(String(100), ForeignKey("balance_line_reversals.reversal_id"), unique=True)
    decision: Mapped[str] = mapped_column(String(16))
    identity: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    applied_minor: Mapped[int | None]
    created_at: Mapped[Created]
