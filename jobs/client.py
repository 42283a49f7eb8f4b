"""The producer side: sign bodies, wrap them in dramatiq messages, enqueue them.

Producers never write raw payloads into the broker (reliability notes §E): they go through this
module (or ``billing enqueue``, which uses it), so every message is a signed envelope on the
queue and actor that ``jobs.routes`` names, and no actor module needs importing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis

from jobs.envelope import make_envelope
from jobs.producers import LOCAL_KEY_ID, LOCAL_PRODUCER, load_registry
from jobs.routes import route_for
from jobs.schemas import parse_body
from worker.settings import Settings

PRODUCER_ENV = "BILLING_PRODUCER"
KEY_ID_ENV = "BILLING_PRODUCER_KEY_ID"
SECRET_ENV = "BILLING_PRODUCER_SECRET"  # noqa: S105 - the variable's name, not a secret


@dataclass(frozen=True)
class Signer:
    """A producer identity and one of its keys."""

    producer: str
    key_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer:
        """From ``BILLING_PRODUCER``, ``..._KEY_ID`` and ``..._SECRET``; else the local producer.

        The local development producer exists only when no producer is configured (see
        ``jobs.producers.load_registry``); otherwise the three variables are required.
        """
        values = {name: os.environ.get(name, "") for name in (PRODUCER_ENV, KEY_ID_ENV, SECRET_ENV)}
        if any(values.values()):
            missing = [name for name, value in values.items() if not value]
            if missing:
                raise ValueError(f"set {', '.join(missing)} as well: a producer needs all three")
            return cls(values[PRODUCER_ENV], values[KEY_ID_ENV], values[SECRET_ENV].encode("utf-8"))
        local = load_registry(settings).get(LOCAL_PRODUCER)
        key = local.key(LOCAL_KEY_ID) if local is not None else None
        if key is None:
            raise ValueError(
                f"producers are configured, so there is no local development producer: "
                f"set {PRODUCER_ENV}, {KEY_ID_ENV} and {SECRET_ENV}"
            )
        return cls(LOCAL_PRODUCER, key.id, key.secret_bytes())

    def envelope(
        self, message_type: str, body: dict[str, Any], *, now: datetime, message_id: str | None = None
    ) -> dict[str, Any]:
        """A signed envelope for ``body``."""
        return make_envelope(
            message_type,
            body,
            producer=self.producer,
            key_id=self.key_id,
            secret=self.secret,
            now=now,
            message_id=message_id,
        )


def build_message(envelope: dict[str, Any]) -> dramatiq.Message[Any]:
    """The dramatiq message for an envelope, on the queue and actor its type routes to."""
    route = route_for(envelope["type"])
    return dramatiq.Message(
        queue_name=route.queue_name, actor_name=route.actor_name, args=(envelope,), kwargs={}, options={}
    )


def send(
    broker: dramatiq.Broker,
    message_type: str,
    body: dict[str, Any],
    signer: Signer,
    *,
    now: datetime,
    validate: bool = False,
) -> str:
    """Sign and enqueue one body; returns the envelope id.

    ``validate=True`` checks the body here first (``InvalidMessage``), for interactive use; the
    worker checks it again either way.
    """
    if validate:
        parse_body(message_type, body)
    message = build_message(signer.envelope(message_type, body, now=now))
    broker.declare_queue(message.queue_name)  # no actor import needed, even on a StubBroker
    broker.enqueue(message)
    return str(message.args[0]["id"])


def _enqueue_pipelined(broker: RedisBroker, messages: list[dramatiq.Message[Any]]) -> None:
    """``RedisBroker.enqueue`` for many messages in one round trip (same script, same arguments)."""
    dispatch = broker.scripts["dispatch"]
    pipeline = broker.client.pipeline(transaction=False)
    enqueued = []
    for original in messages:
        message = original.copy(options={"redis_message_id": str(uuid.uuid4())})
        broker.emit_before("enqueue", message, None)
        arguments = [
            "enqueue",
            current_millis(),
            message.queue_name,
            broker.broker_id,
            broker.heartbeat_timeout,
            broker.dead_message_ttl,
            broker._should_do_maintenance("enqueue"),
            broker._max_unpack_size(),  # type: ignore[no-untyped-call]
            message.options["redis_message_id"],
            message.encode(),
        ]
        dispatch(keys=[broker.namespace], args=arguments, client=pipeline)
        enqueued.append(message)
    pipeline.execute()
    for message in enqueued:
        broker.emit_after("enqueue", message, None)


def send_many(
    broker: dramatiq.Broker,
    items: Iterable[tuple[str, dict[str, Any]]],
    signer: Signer,
    *,
    now: datetime,
    batch_size: int = 500,
) -> int:
    """Sign and enqueue many ``(type, body)`` pairs; returns how many were sent.

    On a ``RedisBroker`` each batch is one pipelined round trip of dramatiq's own dispatch
    script; on any other broker, one ``enqueue`` per message. Every envelope is signed with
    ``now``: keep a load shorter than the signature tolerance, or call this per chunk.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    pipelined = isinstance(broker, RedisBroker)
    count = 0
    batch: list[dramatiq.Message[Any]] = []
    for message_type, body in items:
        message = build_message(signer.envelope(message_type, body, now=now))
        broker.declare_queue(message.queue_name)
        if not pipelined:
            broker.enqueue(message)
            count += 1
            continue
        batch.append(message)
        if len(batch) >= batch_size:
            _enqueue_pipelined(broker, batch)  # type: ignore[arg-type]
            count, batch = count + len(batch), []
    if batch:
        _enqueue_pipelined(broker, batch)  # type: ignore[arg-type]
        count += len(batch)
    return count


class BodyFileError(ValueError):
    """A body file that cannot be read as JSON objects; the message names the line."""


class _FractionError(Exception):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _refuse(literal: str) -> Any:
    raise _FractionError(literal)


def _loads(text: str) -> Any:
    """``json.loads`` that refuses numbers with a fraction or exponent, NaN and Infinity."""
    return json.loads(text, parse_float=_refuse, parse_constant=_refuse)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|NaN|-?Infinity)')


def _fraction_line(text: str) -> int:
    """The 1-based line of the first non-integer number outside strings."""
    for match in _TOKEN.finditer(text):
        number = match.group(1)
        if number is not None and not number.lstrip("-").isdigit():
            return text.count("\n", 0, match.start()) + 1
    return 1


def _fraction_error(name: str, line: int, literal: str) -> BodyFileError:
    return BodyFileError(
        f"{name} line {line}: {literal} is a JSON number with a fraction; "
        'write amounts and percents as strings such as "30.00"'
    )


def _as_body(value: object, name: str, line: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BodyFileError(f"{name} line {line}: a body must be a JSON object, not {type(value).__name__}")
    return value


def _parse_line(text: str, name: str, line: int) -> dict[str, Any]:
    try:
        return _as_body(_loads(text), name, line)
    except _FractionError as found:
        raise _fraction_error(name, line, found.literal) from None
    except json.JSONDecodeError as error:
        raise BodyFileError(f"{name} line {line}: not valid JSON ({error.msg})") from None


def _parse_document(text: str, name: str, first_line: int) -> dict[str, Any]:
    try:
        return _as_body(_loads(text), name, first_line)
    except _FractionError as found:
        raise _fraction_error(name, first_line - 1 + _fraction_line(text), found.literal) from None
    except json.JSONDecodeError as error:
        line = first_line - 1 + error.lineno
        raise BodyFileError(f"{name} line {line}: not valid JSON ({error.msg})") from None


def _open(path: str | Path) -> contextlib.AbstractContextManager[IO[str]]:
    if str(path) == "-":
        return contextlib.nullcontext(sys.stdin)
    return Path(path).open(encoding="utf-8")


def read_bodies(path: str | Path) -> Iterator[dict[str, Any]]:
    """Bodies from a file holding one JSON object (any layout) or JSON Lines; ``-`` is stdin.

    JSON Lines are streamed. A number with a fraction is an error naming its line: money never
    enters as a float.
    """
    name = str(path)
    with _open(path) as handle:
        try:
            yield from _bodies(handle, name)
        except UnicodeDecodeError:
            raise BodyFileError(f"{name}: not UTF-8 text") from None


def _bodies(handle: IO[str], name: str) -> Iterator[dict[str, Any]]:
    numbered = ((number, line) for number, line in enumerate(handle, start=1) if line.strip())
    first = next(numbered, None)
    if first is None:
        raise BodyFileError(f"{name}: holds no message body")
    number, line = first
    try:
        value = _loads(line)
    except json.JSONDecodeError:  # not JSON Lines: one document spread over several lines
        yield _parse_document(line + handle.read(), name, number)
        return
    except _FractionError as found:
        raise _fraction_error(name, number, found.literal) from None
    yield _as_body(value, name, number)
    for number, line in numbered:
        yield _parse_line(line, name, number)
