"""dramatiq's JSON encoding with a decoder that never raises.

On the Redis broker a ``DecodeError`` escapes the consumer thread: the thread restarts, the
prefetched batch stays stranded in the acks set, and after reaping the same bytes crash it again.
So ``decode`` turns anything that is not a well-formed dramatiq
message into a message for the quarantine actor, carrying the raw bytes (base64) and a short
reason. dramatiq's ``Message.decode`` then builds ``Message(**fields)`` without error.

The quarantine message keeps the *queue it was fetched from* as its ``queue_name``: dramatiq
acknowledges a processed message through the consumer of ``message.queue_name``, so a message
renamed to the ``quarantine`` queue would be acked on the wrong queue (the StubBroker fails its
``task_done``; Redis leaves the entry in the real queue's acks set). The fetching queue is read
from dramatiq's ``ConsumerThread``; outside one (direct calls, tests) it is ``quarantine``.

The Redis consumer acks by ``options.redis_message_id``, which lives inside the payload. When
the bad payload still names it, it is kept; otherwise, on a Redis broker, the decoder looks the
entry up among the few this worker has fetched and not yet acked (``SMEMBERS`` of its acks set,
``HMGET`` of their payloads, compared byte for byte). Without the id dramatiq could not ack: the
entry would stay in the acks set and come back after every worker restart.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TypeGuard

import dramatiq
from dramatiq.encoder import Encoder, MessageData
from dramatiq.message import generate_unique_id
from dramatiq.worker import ConsumerThread

from jobs.limits import DEFAULT_MAX_ENVELOPE_BYTES, DEFAULT_MAX_JSON_DEPTH, nests_deeper_than
from jobs.routes import QUARANTINE

if TYPE_CHECKING:  # redis loads with its broker (`billing simulate` has a stub one)
    from dramatiq.brokers.redis import RedisBroker

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
_KEPT_RAW_BYTES = 4096
"""A quarantine message carries at most this much of the bytes it replaces (the rest is not stored)."""

SENDER_OPTIONS_DROPPED = frozenset({
    "max_age", "time_limit", "max_retries", "min_backoff", "max_backoff", "retry_when", "throws",
    "on_success", "on_failure", "pipe_target", "pipe_ignore", "notify_shutdown",
})
"""Per-message options that would let whoever enqueues override the worker's limits (an age limit of
centuries, no time limit, endless retries) or chain other actors: the worker's own settings apply."""
MAX_RETRIES_OPTION = 1000
_TRACEBACK_LIMIT = 8192


class DuplicateKey(ValueError):
    """A JSON object names the same key twice (which one wins differs between parsers)."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"duplicate key {key[:40]!r} in a JSON object")
        result[key] = value
    return result


def strict_loads(text: str) -> Any:
    """``json.loads`` that refuses duplicate keys (``DuplicateKey``)."""
    return json.loads(text, object_pairs_hook=_unique_pairs)


def worker_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options the worker obeys: limits the sender set are dropped, retry counts made sane."""
    kept = {name: value for name, value in options.items() if name not in SENDER_OPTIONS_DROPPED}
    if "retries" in kept:
        kept["retries"] = min(max(int(kept["retries"]), 0), MAX_RETRIES_OPTION)
    if isinstance(kept.get("traceback"), str) and len(kept["traceback"]) > _TRACEBACK_LIMIT:
        kept["traceback"] = kept["traceback"][-_TRACEBACK_LIMIT:]
    return kept


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


def is_redis_broker(broker: object) -> TypeGuard[RedisBroker]:
    """Whether ``broker`` is dramatiq's RedisBroker, without importing redis where it never loaded
    (no object can be a RedisBroker there)."""
    module = sys.modules.get("dramatiq.brokers.redis")
    return module is not None and isinstance(broker, module.RedisBroker)


def _fetched_redis_id(raw: bytes) -> str | None:
    """The Redis entry id of ``raw`` among this consumer's unacked entries (best effort)."""
    thread = threading.current_thread()
    if not isinstance(thread, ConsumerThread) or not is_redis_broker(thread.broker):
        return None
    broker, queue = thread.broker, thread.queue_name
    try:
        ids = sorted(broker.client.smembers(f"{broker.namespace}:__acks__.{broker.broker_id}.{queue}"))
        values = broker.client.hmget(f"{broker.namespace}:{queue}.msgs", ids) if ids else []
    except Exception:  # a lookup failure must not turn into a decode failure
        return None
    for entry_id, value in zip(ids, values, strict=False):
        if value == raw or (isinstance(value, str) and value.encode("utf-8", "surrogatepass") == raw):
            return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return None


def _salvaged_options(fields: object, raw: bytes) -> dict[str, Any]:
    """The Redis entry id, from the payload if it still has one, so the entry can be acked."""
    options = fields.get("options") if isinstance(fields, dict) else None
    if isinstance(options, dict) and isinstance(options.get("redis_message_id"), str):
        return {"redis_message_id": options["redis_message_id"]}
    entry_id = _fetched_redis_id(raw)
    return {"redis_message_id": entry_id} if entry_id is not None else {}


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
        "args": [base64.b64encode(raw[:_KEPT_RAW_BYTES]).decode("ascii"), reason[:_REASON_LIMIT]],
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
    """``JSONEncoder``'s bytes on the way out; a quarantine message for anything unreadable.

    Bytes larger than ``max_bytes`` or nested deeper than ``max_depth`` are quarantined before they
    are parsed, so nothing downstream (redaction, signatures, validation, recording) ever walks them.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> None:
        self.max_bytes = max_bytes
        self.max_depth = max_depth

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
        # The dramatiq message wraps the envelope in two levels (the message, its args).
        if len(raw) > self.max_bytes + 4096:
            reason = f"{len(raw)} bytes, above the limit of {self.max_bytes} bytes"
            return quarantine_message(raw, reason, _salvaged_options(None, raw))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return quarantine_message(raw, "not UTF-8", _salvaged_options(None, raw))
        if nests_deeper_than(text, self.max_depth + 2):
            reason = f"nested more than {self.max_depth} levels deep"
            return quarantine_message(raw, reason, _salvaged_options(None, raw))
        try:
            fields = strict_loads(text)
        except json.JSONDecodeError as error:
            return quarantine_message(raw, f"not JSON: {error.msg} at char {error.pos}", _salvaged_options(None, raw))
        except DuplicateKey as error:
            return quarantine_message(raw, f"not accepted: {error}", _salvaged_options(None, raw))
        except (ValueError, RecursionError) as error:  # too deep, or an integer too long to read
            reason = f"not readable JSON: {type(error).__name__}"
            return quarantine_message(raw, reason, _salvaged_options(None, raw))
        problem = problem_with(fields)
        if problem is not None:
            return quarantine_message(raw, problem, _salvaged_options(fields, raw))
        assert isinstance(fields, dict)
        fields["options"] = worker_options(fields["options"])
        return fields
