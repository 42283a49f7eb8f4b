"""dramatiq's JSON encoding with a decoder that never raises.

On the Redis broker a ``DecodeError`` escapes the consumer thread: the thread restarts, the
prefetched batch stays stranded in the acks set, and after reaping the same bytes crash it again
(reliability notes §0.4). So ``decode`` turns anything that is not a well-formed dramatiq
message into a message for the quarantine actor, carrying the raw bytes (base64) and a short
reason. dramatiq's ``Message.decode`` then builds ``Message(**fields)`` without error.

The quarantine message keeps the *queue it was fetched from* as its ``queue_name``: dramatiq
acknowledges a processed message through the consumer of ``message.queue_name``, so a message
renamed to the ``quarantine`` queue would be acked on the wrong queue (the StubBroker fails its
``task_done``; Redis leaves the entry in the real queue's acks set). The fetching queue is read
from dramatiq's ``ConsumerThread``; outside one (direct calls, tests) it is ``quarantine``.

When the bad payload still names its ``options.redis_message_id``, the quarantine message keeps
it so the Redis consumer can acknowledge the original entry. Bytes that are not JSON carry no
such id: dramatiq logs a failed ack, the entry stays in this worker's acks set until the worker
stops and is then delivered once more, so the quarantine actor dedupes by the payload's hash.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
from typing import Any

import dramatiq
from dramatiq.encoder import Encoder, MessageData
from dramatiq.message import generate_unique_id
from dramatiq.worker import ConsumerThread

from jobs.routes import QUARANTINE

REQUIRED_FIELDS = (
    "queue_name",
    "actor_name",
    "args",
    "kwargs",
    "options",
    "message_id",
    "message_timestamp",
)
_KNOWN_FIELDS = frozenset(field.name for field in dataclasses.fields(dramatiq.Message))
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "queue_name": str,
    "actor_name": str,
    "args": list,
    "kwargs": dict,
    "options": dict,
    "message_id": str,
}
_INT_OPTIONS = ("retries", "max_retries", "min_backoff", "max_backoff", "max_age", "time_limit")
"""Options dramatiq's middleware does arithmetic on: a wrong type there would crash a thread."""

_REASON_LIMIT = 200


def _field_problem(fields: dict[str, Any]) -> str | None:
    missing = [name for name in REQUIRED_FIELDS if name not in fields]
    if missing:
        return "missing dramatiq fields: " + ", ".join(missing)
    unknown = sorted(set(fields) - _KNOWN_FIELDS)
    if unknown:
        return "unexpected fields: " + ", ".join(unknown)
    for name, expected in _FIELD_TYPES.items():
        if not isinstance(fields[name], expected) or fields[name] == "":
            return f"{name} has the wrong type ({type(fields[name]).__name__})"
    timestamp = fields["message_timestamp"]
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        return f"message_timestamp has the wrong type ({type(timestamp).__name__})"
    return None


def _option_problem(options: dict[str, Any]) -> str | None:
    for name in _INT_OPTIONS:
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"option {name} has the wrong type ({type(value).__name__})"
    if not isinstance(options.get("redis_message_id", ""), str):
        return "option redis_message_id has the wrong type"
    return None


def problem_with(fields: object) -> str | None:
    """Why a decoded JSON value is not a message dramatiq can run, or ``None`` if it is."""
    if not isinstance(fields, dict):
        return f"not a JSON object but a {type(fields).__name__}"
    return _field_problem(fields) or _option_problem(fields["options"])


def _salvaged_options(fields: object) -> dict[str, Any]:
    """Keep the Redis entry id when the payload still has one, so the entry can be acked."""
    options = fields.get("options") if isinstance(fields, dict) else None
    if isinstance(options, dict) and isinstance(options.get("redis_message_id"), str):
        return {"redis_message_id": options["redis_message_id"]}
    return {}


def _fetching_queue() -> str:
    """The queue whose consumer is decoding (it must also ack), else the quarantine queue."""
    thread = threading.current_thread()
    if isinstance(thread, ConsumerThread) and isinstance(thread.queue_name, str):
        return thread.queue_name
    return QUARANTINE.queue_name


def quarantine_message(raw: bytes, reason: str, options: dict[str, Any] | None = None) -> MessageData:
    """The fields of a message for the quarantine actor: ``args = [base64(raw), reason]``."""
    return {
        "queue_name": _fetching_queue(),
        "actor_name": QUARANTINE.actor_name,
        "args": [base64.b64encode(raw).decode("ascii"), reason[:_REASON_LIMIT]],
        "kwargs": {},
        "options": dict(options or {}),
        "message_id": generate_unique_id(),
        "message_timestamp": int(time.time() * 1000),
    }


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    return repr(data).encode("utf-8", "backslashreplace")


class SafeJSONEncoder(Encoder):
    """``JSONEncoder``'s bytes on the way out; a quarantine message for anything unreadable."""

    def encode(self, data: MessageData) -> bytes:
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    def decode(self, data: bytes) -> MessageData:
        try:
            return self._decode(data)
        except Exception as error:  # the last line of defence: this method must not raise
            try:
                raw = _as_bytes(data)
            except Exception:
                raw = b""
            return quarantine_message(raw, f"decoder failure: {type(error).__name__}")

    def _decode(self, data: bytes) -> MessageData:
        raw = _as_bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return quarantine_message(raw, "not UTF-8")
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as error:
            return quarantine_message(raw, f"not JSON: {error.msg} at char {error.pos}")
        except (ValueError, RecursionError) as error:  # too deep, or an integer too long to read
            return quarantine_message(raw, f"not readable JSON: {type(error).__name__}")
        problem = problem_with(fields)
        if problem is not None:
            return quarantine_message(raw, problem, _salvaged_options(fields))
        assert isinstance(fields, dict)
        return fields
