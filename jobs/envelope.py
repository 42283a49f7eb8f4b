"""The signed envelope every message travels in, and its verification.

Stripe's webhook scheme adapted to a queue: an HMAC-SHA256 over the canonical JSON of the
envelope without its ``signature``, compared in constant time, a ``sent_at`` tolerance, and a
``key_id`` naming the producer key so keys can rotate. The signature covers the dict *as sent*
(``sent_at`` as its original string), never a re-serialised model, so no parser round trip can
change what was signed.

``verify`` answers three questions in order: is the envelope well formed (``InvalidMessage``),
did a known key of the named producer sign it recently (``Unauthorized``), and may that producer
send this type (``Forbidden``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from jobs.canonical import FloatInJsonError, canonical_json
from jobs.errors import Forbidden, InvalidMessage, Unauthorized, echo, field_failure
from jobs.producers import Producer, ProducerKey, ProducerRegistry
from jobs.routes import MESSAGE_TYPES

ENVELOPE_VERSION = 1
_MESSAGE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _instant(value: object) -> object:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            example = "2026-01-31T10:00:00Z"
            raise field_failure(f"{echo(value)} is not an ISO-8601 instant such as {example}") from None
        if parsed.utcoffset() is None:
            raise field_failure(f"{echo(value)} has no time zone; write it in UTC with a Z")
        return parsed
    return value


class Envelope(BaseModel):
    """A verified message: who sent it, when, what type, and the (not yet validated) body."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    type: str = Field(min_length=1, max_length=64)
    version: int = ENVELOPE_VERSION
    id: str = Field(min_length=1, max_length=64, pattern=f"^{_MESSAGE_ID.pattern}$")
    producer: str = Field(min_length=1, max_length=64)
    key_id: str = Field(min_length=1, max_length=64)
    sent_at: Annotated[AwareDatetime, BeforeValidator(_instant)]
    body: dict[str, Any]
    signature: str = Field(min_length=1, max_length=256)


def format_instant(instant: datetime) -> str:
    """``sent_at`` as written on the wire: UTC, milliseconds, ``Z``."""
    if instant.utcoffset() is None:
        raise ValueError("sent_at needs an aware datetime")
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sign(fields_without_signature: dict[str, Any], secret: bytes) -> str:
    """Hex HMAC-SHA256 over the canonical JSON of the envelope minus ``signature``."""
    fields = {key: value for key, value in fields_without_signature.items() if key != "signature"}
    return hmac.new(secret, canonical_json(fields), hashlib.sha256).hexdigest()


def make_envelope(
    type: str,
    body: dict[str, Any],
    *,
    producer: str,
    key_id: str,
    secret: bytes,
    now: datetime,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A signed envelope as a JSON-ready dict (the body is referenced, not copied)."""
    envelope_id = message_id if message_id is not None else uuid.uuid4().hex
    if not _MESSAGE_ID.fullmatch(envelope_id):
        raise ValueError(f"message id {envelope_id!r} must be 1 to 64 of A-Z a-z 0-9 . _ : -")
    fields: dict[str, Any] = {
        "type": type,
        "version": ENVELOPE_VERSION,
        "id": envelope_id,
        "producer": producer,
        "key_id": key_id,
        "sent_at": format_instant(now),
        "body": body,
    }
    return {**fields, "signature": sign(fields, secret)}


def _parse(raw: object) -> Envelope:
    if not isinstance(raw, dict):
        raise InvalidMessage("envelope", f"must be a JSON object, not {type(raw).__name__}")
    signature = raw.get("signature")
    if not isinstance(signature, str) or not signature:
        raise Unauthorized("the message is not signed: its envelope has no signature")
    try:
        return Envelope.model_validate(raw)
    except ValidationError as error:
        raise InvalidMessage.from_validation_error(error, default_field="envelope") from None


def _expected_signature(raw: dict[str, Any], secret: bytes) -> str:
    try:
        return sign(raw, secret)
    except FloatInJsonError as error:
        raise InvalidMessage(
            error.path, f'{error.value!r} is a JSON number with a fraction; send it as a decimal string'
        ) from None
    except (ValueError, TypeError, RecursionError):
        reason = "cannot be written as canonical JSON (invalid text or nested too deep)"
        raise InvalidMessage("body", reason) from None


def _key(envelope: Envelope, registry: ProducerRegistry, now: datetime) -> tuple[Producer, ProducerKey]:
    """The producer and its key the envelope names, the key unexpired at ``now``."""
    producer = registry.get(envelope.producer)
    if producer is None:
        raise Unauthorized(f"unknown producer {echo(envelope.producer)}")
    key = producer.key(envelope.key_id)
    if key is None:
        raise Unauthorized(f"producer {producer.name!r} has no key {echo(envelope.key_id)}")
    if key.expired(now.astimezone(UTC).date()):
        raise Unauthorized(f"key {key.id!r} of producer {producer.name!r} expired after {key.not_after}")
    return producer, key


def _authenticate(envelope: Envelope, raw: dict[str, Any], registry: ProducerRegistry, now: datetime) -> None:
    producer, key = _key(envelope, registry, now)
    expected = _expected_signature(raw, key.secret_bytes())
    if not hmac.compare_digest(expected.encode("ascii"), envelope.signature.encode("utf-8", "replace")):
        raise Unauthorized(
            f"the signature does not match key {key.id!r} of producer {producer.name!r}: "
            "the message was altered or signed with another secret"
        )


def _check_fresh(envelope: Envelope, raw: dict[str, Any], now: datetime, tolerance: int) -> None:
    skew = (envelope.sent_at - now).total_seconds()
    if abs(skew) > tolerance:
        side = "ahead of" if skew > 0 else "behind"
        raise Unauthorized(
            f"sent_at {raw['sent_at']} is {abs(skew):.0f} s {side} the worker's clock; "
            f"the tolerance is {tolerance} s (replayed, delayed or clock skew)"
        )


def verify(
    raw: object, registry: ProducerRegistry, *, now: datetime, tolerance_seconds: int
) -> Envelope:
    """Check an envelope as received; return it, or raise a ``Rejected`` saying why.

    ``now`` is the instant to judge ``sent_at`` against. Pass the time the worker *first*
    received the message, not the time of a retry: redeliveries are normal and must not turn a
    good message into a stale one. ``tolerance_seconds`` is how far
    ``sent_at`` may lie from ``now``.
    """
    if now.utcoffset() is None:
        raise ValueError("verify needs an aware datetime for now")
    envelope = _parse(raw)
    assert isinstance(raw, dict)
    _authenticate(envelope, raw, registry, now)
    _check_fresh(envelope, raw, now, tolerance_seconds)
    if envelope.version != ENVELOPE_VERSION:
        raise InvalidMessage(
            "version", f"unsupported version {envelope.version}; this worker reads version {ENVELOPE_VERSION}"
        )
    if envelope.type not in MESSAGE_TYPES:
        raise InvalidMessage("type", f"unknown message type {echo(envelope.type)}")
    producer = registry.get(envelope.producer)
    assert producer is not None
    if not producer.may_send(envelope.type):
        raise Forbidden(
            f"producer {producer.name!r} may not send {envelope.type} messages (its types: {', '.join(producer.types)})"
        )
    return envelope


def verify_times(
    envelope: Envelope, raw: dict[str, Any], registry: ProducerRegistry, *, now: datetime, tolerance_seconds: int
) -> None:
    """The time rules of ``verify`` alone (key expiry, ``sent_at`` within the tolerance), judged at ``now``.

    For an envelope ``verify`` accepted at a later instant: a redelivery is judged at the instant
    the worker first saw it, which its delivery count reports.
    """
    _key(envelope, registry, now)
    _check_fresh(envelope, raw, now, tolerance_seconds)


def authentic(raw: object, registry: ProducerRegistry, now: datetime) -> bool:
    """Whether a known key of the named producer, unexpired at ``now``, signed ``raw``; never raises.

    For records of refused messages: what an authenticated message claims (its author, say) is the
    producer's word and can be kept; what an unauthenticated one claims is anyone's.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("signature"), str):
        return False
    name, key_id = raw.get("producer"), raw.get("key_id")
    producer = registry.get(name) if isinstance(name, str) else None
    key = producer.key(key_id) if producer is not None and isinstance(key_id, str) else None
    if key is None or key.expired(now.astimezone(UTC).date()):
        return False
    try:
        expected = sign(raw, key.secret_bytes())
    except (FloatInJsonError, ValueError, TypeError, RecursionError):
        return False
    return hmac.compare_digest(expected.encode("ascii"), raw["signature"].encode("utf-8", "replace"))
