"""Signed envelopes: Stripe's scheme (HMAC-SHA256, constant-time compare, tolerance, key id)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobs.canonical import canonical_json
from jobs.envelope import Envelope, make_envelope, sign, verify
from jobs.errors import Forbidden, InvalidMessage, Rejected, Unauthorized
from tests.unit.jobs.helpers import NEW_SECRET, NOW, OLD_SECRET, line_body, registry

TOLERANCE = 300


def envelope(
    *,
    type: str = "balance_line.create",
    body: dict[str, Any] | None = None,
    producer: str = "crm",
    key_id: str = "crm-2026",
    secret: str = NEW_SECRET,
    now: datetime = NOW,
) -> dict[str, Any]:
    return make_envelope(
        type, body if body is not None else line_body(), producer=producer, key_id=key_id,
        secret=secret.encode(), now=now,
    )


def check(raw: object, now: datetime = NOW) -> Envelope:
    return verify(raw, registry(), now=now, tolerance_seconds=TOLERANCE)


def test_a_signed_envelope_verifies_and_keeps_what_was_sent() -> None:
    raw = envelope()
    verified = check(raw)
    assert verified.producer == "crm" and verified.key_id == "crm-2026"
    assert verified.body == line_body()
    assert raw["sent_at"] == "2026-03-01T12:00:00.000Z"
    assert verified.sent_at == NOW


def test_the_signature_is_an_hmac_of_the_canonical_envelope_without_it() -> None:
    raw = envelope()
    fields = {key: value for key, value in raw.items() if key != "signature"}
    expected = hmac.new(NEW_SECRET.encode(), canonical_json(fields), hashlib.sha256).hexdigest()
    assert raw["signature"] == expected == sign(raw, NEW_SECRET.encode())


def test_key_order_on_the_wire_does_not_matter() -> None:
    raw = envelope()
    assert check(dict(reversed(list(raw.items())))).id == raw["id"]


def test_make_envelope_uses_the_given_id_and_refuses_bad_ones() -> None:
    raw = make_envelope("bill_run.trigger", {}, producer="ops", key_id="ops-1", secret=b"k", now=NOW,
                        message_id="run:2026-03-01")
    assert raw["id"] == "run:2026-03-01"
    with pytest.raises(ValueError, match="message id"):
        make_envelope("bill_run.trigger", {}, producer="ops", key_id="ops-1", secret=b"k", now=NOW,
                      message_id="has space")
    with pytest.raises(ValueError, match="aware"):
        make_envelope("bill_run.trigger", {}, producer="ops", key_id="ops-1", secret=b"k",
                      now=datetime(2026, 3, 1))


def rejection(raw: object, now: datetime = NOW) -> Rejected:
    with pytest.raises(Rejected) as caught:
        check(raw, now)
    return caught.value


@pytest.mark.parametrize(
    ("label", "tamper", "error", "words"),
    [
        ("forged", lambda e: {**e, "signature": "0" * 64}, Unauthorized, "does not match key 'crm-2026'"),
        ("not hex", lambda e: {**e, "signature": "é" * 64}, Unauthorized, "does not match"),
        ("body altered", lambda e: {**e, "body": {**e["body"], "amount": "500.00"}}, Unauthorized,
         "altered"),
        ("type altered", lambda e: {**e, "type": "balance_line.reverse"}, Unauthorized, "does not match"),
        ("sent_at altered", lambda e: {**e, "sent_at": "2026-03-01T12:00:00Z"}, Unauthorized,
         "does not match"),
        ("unknown key id", lambda e: {**e, "key_id": "crm-2030"}, Unauthorized,
         "producer 'crm' has no key 'crm-2030'"),
        ("unknown producer", lambda e: {**e, "producer": "mallory"}, Unauthorized,
         "unknown producer 'mallory'"),
        ("unsigned", lambda e: {k: v for k, v in e.items() if k != "signature"}, Unauthorized, "not signed"),
        ("empty signature", lambda e: {**e, "signature": ""}, Unauthorized, "not signed"),
    ],
)
def test_signature_failures_are_unauthorized(
    label: str, tamper: Any, error: type[Rejected], words: str
) -> None:
    refused = rejection(tamper(envelope()))
    assert type(refused) is error and refused.code == "unauthorized", label
    assert words in refused.reason


def test_only_the_named_key_is_tried() -> None:
    january = datetime(2026, 1, 15, tzinfo=UTC)
    labelled_old = envelope(key_id="crm-2025", secret=NEW_SECRET, now=january)
    refused = rejection(labelled_old, january)
    assert refused.code == "unauthorized" and "does not match key 'crm-2025'" in refused.reason


def test_no_reason_reveals_a_secret_or_the_expected_signature() -> None:
    raw = envelope()
    forged = {**raw, "body": {**raw["body"], "amount": "500.00"}}
    reason = rejection(forged).reason
    expected = sign(forged, NEW_SECRET.encode())
    assert NEW_SECRET not in reason and expected not in reason and raw["signature"] not in reason


def test_a_rotated_key_works_until_its_not_after_day_and_is_refused_after() -> None:
    last_day = datetime(2026, 1, 31, 23, 59, tzinfo=UTC)
    old = envelope(key_id="crm-2025", secret=OLD_SECRET, now=last_day)
    assert check(old, last_day).key_id == "crm-2025"
    next_day = last_day + timedelta(minutes=2)
    late = envelope(key_id="crm-2025", secret=OLD_SECRET, now=next_day)
    refused = rejection(late, next_day)
    assert refused.code == "unauthorized"
    assert refused.reason == "key 'crm-2025' of producer 'crm' expired after 2026-01-31"


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (timedelta(seconds=-TOLERANCE - 1), "301 s behind the worker's clock"),
        (timedelta(seconds=TOLERANCE + 60), "360 s ahead of the worker's clock"),
        (timedelta(days=-3), "behind"),
    ],
)
def test_stale_and_future_sent_at_are_unauthorized(offset: timedelta, words: str) -> None:
    refused = rejection(envelope(now=NOW + offset))
    assert refused.code == "unauthorized"
    assert words in refused.reason and "tolerance is 300 s" in refused.reason


@pytest.mark.parametrize("offset", [timedelta(seconds=-TOLERANCE), timedelta(seconds=TOLERANCE)])
def test_sent_at_exactly_at_the_tolerance_is_accepted(offset: timedelta) -> None:
    assert check(envelope(now=NOW + offset)).producer == "crm"


def test_the_tolerance_defaults_to_the_settings() -> None:
    raw = envelope(now=NOW - timedelta(seconds=299))
    assert verify(raw, registry(), now=NOW, tolerance_seconds=TOLERANCE).id == raw["id"]


def test_a_type_the_producer_may_not_send_is_forbidden() -> None:
    refused = rejection(envelope(type="bill_run.trigger", body={}))
    assert isinstance(refused, Forbidden) and refused.code == "forbidden"
    assert refused.reason == (
        "producer 'crm' may not send bill_run.trigger messages (its types: balance_line.create, balance_line.reverse)"
    )


def test_an_unknown_type_is_invalid() -> None:
    refused = rejection(envelope(type="account.delete", body={}))
    assert refused.code == "invalid" and refused.reason.startswith("type: unknown message type")


def test_only_version_1_is_read() -> None:
    raw = envelope()
    fields = {**{k: v for k, v in raw.items() if k != "signature"}, "version": 2}
    refused = rejection({**fields, "signature": sign(fields, NEW_SECRET.encode())})
    assert isinstance(refused, InvalidMessage)
    assert refused.reason == "version: unsupported version 2; this worker reads version 1"


def resigned(raw: dict[str, Any], **fields: Any) -> dict[str, Any]:
    unsigned = {**{k: v for k, v in raw.items() if k != "signature"}, **fields}
    return {**unsigned, "signature": sign(unsigned, NEW_SECRET.encode())}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (["not", "an", "object"], "envelope: must be a JSON object, not list"),
        ("text", "envelope: must be a JSON object, not str"),
        (resigned(envelope(), sent_at="2026-03-01 12:00"), "sent_at: '2026-03-01 12:00' has no time zone"),
        (resigned(envelope(), sent_at="yesterday"), "sent_at: 'yesterday' is not an ISO-8601 instant"),
        (resigned(envelope(), sent_at=1772366400), "sent_at: must be an ISO-8601 instant, not a number"),
        (resigned(envelope(), id="a b"), "id: 'a b' has characters that are not allowed here"),
        (resigned(envelope(), id="x" * 65), "id: must be at most 64 characters, not 65"),
        (resigned(envelope(), version=True), "version: must be a whole number, not a boolean"),
        (resigned(envelope(), body=[]), "body: must be an object, not a list"),
        (resigned(envelope(), extra="x"), "extra: is not a known field"),
        ({k: v for k, v in envelope().items() if k != "producer"}, "producer: is required"),
    ],
)
def test_malformed_envelopes_are_invalid_and_name_the_field(raw: object, reason: str) -> None:
    refused = rejection(raw)
    assert isinstance(refused, InvalidMessage)
    assert refused.reason.startswith(reason)


def test_a_float_in_the_body_is_invalid_and_named() -> None:
    raw = resigned(envelope(), body=line_body())
    raw["body"]["amount"] = 5.5  # as a producer writing straight into the broker could
    refused = rejection(raw)
    assert isinstance(refused, InvalidMessage)
    assert refused.reason.startswith("body.amount: 5.5 is a JSON number with a fraction")


def test_verify_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        verify(envelope(), registry(), now=datetime(2026, 3, 1), tolerance_seconds=1)
