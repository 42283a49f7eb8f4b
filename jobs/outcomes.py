"""The closed vocabularies of message handling: how a message ended, and why one was refused."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How one delivery of a message ended (``billing_messages_total{outcome}``)."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    """Its idempotency key was already processed with the same body: nothing changed."""
    PARKED = "parked"
    """It waits in the database for its account to be onboarded."""
    PENDING_APPROVAL = "pending_approval"
    """A balance line or a reversal above its producer's approval threshold, held for a second identity."""
    REJECTED = "rejected"
    QUARANTINED = "quarantined"
    FAILED = "failed"
    """A transient fault (database or broker): retried with backoff, or dead-lettered."""


class RejectionCode(StrEnum):
    """Why a message was refused for good; the codes ``billing dlq`` and the acceptance runner read."""

    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    LIMIT_EXCEEDED = "limit_exceeded"
    CONFLICT = "conflict"
    UNKNOWN_ACCOUNT = "unknown_account"
    CURRENCY_MISMATCH = "currency_mismatch"
    QUARANTINED = "quarantined"
    """Undecodable bytes, or a message that kept killing its worker."""
    RETRIES_EXHAUSTED = "retries_exhausted"
    """A transient fault outlasted every retry: the message was dead-lettered."""


REPLAYABLE = frozenset({RejectionCode.UNKNOWN_ACCOUNT, RejectionCode.QUARANTINED, RejectionCode.RETRIES_EXHAUSTED})
"""Codes whose cause can go away; the others need a corrected message from the producer."""
