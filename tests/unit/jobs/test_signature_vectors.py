"""The signature test vectors in ``tests/vectors/`` are what ``jobs.canonical`` and ``jobs.envelope`` compute.

Each vector holds an envelope without its signature, the producer's secret, the canonical JSON the
HMAC covers (as text; its bytes are the text's UTF-8) and the expected signature. Producers in other
languages check their implementation against the same files (``docs/protocol.md``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from jobs.canonical import canonical_json
from jobs.envelope import sign, verify
from jobs.errors import Unauthorized
from jobs.producers import Producer, ProducerKey, ProducerRegistry
from jobs.routes import MESSAGE_TYPES

VECTORS_DIR = Path(__file__).resolve().parents[2] / "vectors"
VECTORS = sorted(VECTORS_DIR.glob("*.json"))
FIELDS = {"description", "secret", "envelope", "canonical", "canonical_sha256", "signature"}


def load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vector


def registry_for(vector: dict[str, Any]) -> ProducerRegistry:
    envelope = vector["envelope"]
    producer = Producer(
        name=envelope["producer"],
        keys=[ProducerKey(id=envelope["key_id"], secret=SecretStr(vector["secret"]))],
        types=list(MESSAGE_TYPES),
    )
    return ProducerRegistry(producers={producer.name: producer})


def test_there_are_vectors_for_each_case_the_protocol_names() -> None:
    assert {path.stem for path in VECTORS} >= {"simple-onboard", "non-ascii-text", "nested-key-order", "scalars"}


@pytest.mark.parametrize("path", VECTORS, ids=[path.stem for path in VECTORS])
def test_vector_canonical_bytes_and_signature(path: Path) -> None:
    vector = load(path)
    assert set(vector) == FIELDS
    envelope = vector["envelope"]
    assert "signature" not in envelope

    canonical = canonical_json(envelope)

    assert canonical == vector["canonical"].encode("utf-8")
    assert hashlib.sha256(canonical).hexdigest() == vector["canonical_sha256"]
    assert sign(envelope, vector["secret"].encode("utf-8")) == vector["signature"]


@pytest.mark.parametrize("path", VECTORS, ids=[path.stem for path in VECTORS])
def test_vector_envelope_passes_the_workers_verification(path: Path) -> None:
    vector = load(path)
    signed = {**vector["envelope"], "signature": vector["signature"]}
    sent_at = datetime.fromisoformat(signed["sent_at"])

    envelope = verify(signed, registry_for(vector), now=sent_at, tolerance_seconds=300)

    assert envelope.id == signed["id"]


@pytest.mark.parametrize("path", VECTORS, ids=[path.stem for path in VECTORS])
def test_any_change_to_the_signed_fields_breaks_the_vector_signature(path: Path) -> None:
    vector = load(path)
    body = {**vector["envelope"]["body"], "added": "x"}
    altered = {**vector["envelope"], "body": body, "signature": vector["signature"]}
    sent_at = datetime.fromisoformat(altered["sent_at"])

    with pytest.raises(Unauthorized, match="signature does not match"):
        verify(altered, registry_for(vector), now=sent_at, tolerance_seconds=300)


def test_key_order_on_the_wire_does_not_change_the_signature() -> None:
    vector = load(VECTORS_DIR / "nested-key-order.json")
    text = json.dumps(vector["envelope"])
    reversed_envelope = json.loads(text, object_pairs_hook=lambda pairs: dict(reversed(pairs)))

    assert list(reversed_envelope) != list(vector["envelope"])
    assert sign(reversed_envelope, vector["secret"].encode("utf-8")) == vector["signature"]
