"""Side effects that belong to a unit of work: they happen once it commits, never if it rolls back.

Counters are the case in point: a line "accepted" inside a transaction that later fails (an
onboarding whose second line is over a cap, a lost database connection) was never accepted.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

_PENDING = "billing_on_commit"
_LISTENING = "billing_on_commit_listening"


def on_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` after the session's transaction commits; drop it if it rolls back."""
    if not session.info.get(_LISTENING):
        event.listen(session, "after_commit", _run)
        event.listen(session, "after_rollback", _drop)
        session.info[_LISTENING] = True
    session.info.setdefault(_PENDING, []).append(action)


def _run(session: Session) -> None:
    for action in session.info.pop(_PENDING, []):
        action()


def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)
