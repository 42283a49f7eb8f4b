"""The decoder never raises: undecodable payloads become quarantine messages, not consumer crashes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from queue import PriorityQueue
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.message import get_encoder, set_encoder
from dramatiq.worker import ConsumerThread
from hypothesis import given
from hypothesis import strategies as st

from jobs.routes import QUARANTINE
from jobs.signer import Signer
from tests.unit.jobs.helpers import NOW, line_body
from worker.client import build_message
from worker.encoder import REQUIRED_FIELDS, SafeJSONEncoder

ENCODER = SafeJSONEncoder()
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from([*REQUIRED_FIELDS, "extra"]) | st.text(max_size=6)


def assert_runnable(fields: dict[str, Any]) -> dramatiq.Message[Any]:
    """What dramatiq's ``Message.decode`` does with the decoder's output must not fail."""
    assert set(fields) == set(REQUIRED_FIELDS)
    return dramatiq.Message(**{**fields, "args": tuple(fields["args"])})


def assert_quarantined(fields: dict[str, Any], raw: bytes) -> str:
    # Outside a consumer thread the quarantine message goes to the quarantine queue.
    assert (fields["queue_name"], fields["actor_name"]) == QUARANTINE
    payload, reason = fields["args"]
    assert base64.b64decode(payload) == raw[:4096]  # what the quarantine keeps of it
    assert isinstance(reason, str) and 0 < len(reason) <= 200
    assert fields["kwargs"] == {} and set(fields["options"]) <= {"redis_message_id"}
    assert isinstance(fields["message_timestamp"], int)
    return reason


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_to_a_quarantine_message_or_faithfully(raw: bytes) -> None:
    fields = ENCODER.decode(raw)
    assert_runnable(fields)
    if fields["actor_name"] == QUARANTINE.actor_name and fields["args"][:1] == [base64.b64encode(raw).decode()]:
        assert_quarantined(fields, raw)
    else:
        assert fields == json.loads(raw)


@given(st.dictionaries(field_names, json_values, max_size=9))
def test_arbitrary_json_objects_never_break_the_consumer(document: dict[str, Any]) -> None:
    raw = json.dumps(document).encode()
    fields = ENCODER.decode(raw)
    assert_runnable(fields)
    if fields != document:
        assert_quarantined(fields, raw)


@given(json_values)
def test_a_message_with_any_json_args_survives_a_round_trip(value: Any) -> None:
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name="q", actor_name="a", args=(value,), kwargs={"k": value}, options={}
    )
    decoded = assert_runnable(ENCODER.decode(ENCODER.encode(message.asdict())))
    assert decoded == message


def test_a_real_message_round_trips_exactly() -> None:
    envelope = Signer("crm", "crm-2026", b"s" * 32).envelope("balance_line.create", line_body(), now=NOW)
    message = build_message(envelope).copy(options={"redis_message_id": "r-1", "retries": 2})
    encoded = ENCODER.encode(message.asdict())
    assert encoded == dramatiq.JSONEncoder().encode(message.asdict())
    assert assert_runnable(ENCODER.decode(encoded)) == message


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"", "not JSON"),
        (b"{'single': 'quotes'}", "not JSON"),
        (b"[" * 100_000, "nested more than 20 levels deep"),
        (b"[" * 600 + b"]" * 600, "nested more than 20 levels deep"),
        (b"x" * 300_000, "300000 bytes, above the limit of 262144 bytes"),
        (b'{"a": 1, "a": 2}', "not accepted: duplicate key 'a' in a JSON object"),
        (b"1" * 5000, "not readable JSON: ValueError"),
        (b'"text"', "not a JSON object but a str"),
        (b'{"queue_name": "q"}', "missing dramatiq fields: actor_name, args, kwargs, options"),
    ],
)
def test_reasons_say_what_was_wrong(raw: bytes, reason: str) -> None:
    assert assert_quarantined(ENCODER.decode(raw), raw).startswith(reason)


def valid(**changes: Any) -> dict[str, Any]:
    fields = dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={}).asdict()
    return {**fields, "args": [], **changes}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (valid(args={}), "args has the wrong type (dict)"),
        (valid(options="eta"), "options has the wrong type (str)"),
        (valid(queue_name=""), "queue_name has the wrong type"),
        (valid(message_timestamp="now"), "message_timestamp has the wrong type (str)"),
        (valid(message_timestamp=True), "message_timestamp has the wrong type (bool)"),
        (valid(surprise=1), "unexpected fields: surprise"),
        (valid(options={"retries": "many", "redis_message_id": "r-9"}), "option retries has the wrong type"),
        (valid(options={"redis_message_id": 7}), "option redis_message_id has the wrong type"),
    ],
)
def test_wrong_shapes_are_quarantined(fields: dict[str, Any], reason: str) -> None:
    raw = json.dumps(fields).encode()
    decoded = ENCODER.decode(raw)
    assert assert_quarantined(decoded, raw).startswith(reason)


def test_the_redis_entry_id_is_kept_so_the_entry_can_be_acked() -> None:
    raw = json.dumps(valid(options={"retries": "x", "redis_message_id": "r-9"})).encode()
    assert ENCODER.decode(raw)["options"] == {"redis_message_id": "r-9"}


def test_even_a_non_bytes_argument_does_not_raise() -> None:
    fields = ENCODER.decode(12345)  # type: ignore[arg-type]
    assert fields["actor_name"] == QUARANTINE.actor_name


@pytest.fixture
def safe_encoder() -> Iterator[None]:
    previous = get_encoder()
    set_encoder(SafeJSONEncoder())
    yield
    set_encoder(previous)


@pytest.mark.usefixtures("safe_encoder")
def test_a_worker_quarantines_garbage_and_keeps_consuming() -> None:
    # Given a broker with the quarantine actor and a normal actor on the same queue
    broker = StubBroker()
    quarantined: list[tuple[bytes, str]] = []
    handled: list[str] = []

    def undecodable(payload: str, reason: str) -> None:
        quarantined.append((base64.b64decode(payload), reason))

    def create(envelope: dict[str, Any]) -> None:
        handled.append(envelope["id"])

    dramatiq.actor(broker=broker, actor_name=QUARANTINE.actor_name, queue_name=QUARANTINE.queue_name)(undecodable)
    dramatiq.actor(broker=broker, actor_name="balances.create_balance_line", queue_name="balances")(create)
    # When garbage lands in the queue ahead of a real message
    broker.queues["balances"].put(b"\xffgarbage")
    envelope = Signer("crm", "crm-2026", b"s" * 32).envelope("balance_line.create", line_body(), now=NOW)
    broker.enqueue(build_message(envelope))
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        broker.join("balances")
        broker.join(QUARANTINE.queue_name)
        worker.join()
    finally:
        worker.stop()
    # Then the garbage is quarantined with its bytes and the real message is still processed
    assert quarantined == [(b"\xffgarbage", "not UTF-8")]
    assert handled == [envelope["id"]]
    assert broker.dead_letters == []  # both were acked, each through the consumer that fetched it


class FakeRedis:
    """Just enough of redis-py for a RedisBroker built on it and for the decoder's lookup."""

    def __init__(self, entries: dict[bytes, bytes], unacked: set[bytes]) -> None:
        self.entries, self.unacked = entries, unacked
        self.keys_read: list[str] = []

    def register_script(self, script: bytes) -> Any:
        return lambda *args, **kwargs: None

    def smembers(self, key: str) -> set[bytes]:
        self.keys_read.append(key)
        return set(self.unacked)

    def hmget(self, key: str, ids: list[bytes]) -> list[bytes | None]:
        self.keys_read.append(key)
        return [self.entries.get(entry_id) for entry_id in ids]


def decode_in_consumer_thread(broker: dramatiq.Broker, raw: bytes) -> dict[str, Any]:
    """Decode as dramatiq does: inside the ConsumerThread of the queue being fetched."""
    results: list[dict[str, Any]] = []

    class Probe(ConsumerThread):
        def run(self) -> None:
            results.append(ENCODER.decode(raw))

    probe = Probe(broker=broker, queue_name="balances", prefetch=1, work_queue=PriorityQueue(), worker_timeout=10)
    probe.start()
    probe.join()
    return results[0]


def test_in_a_redis_consumer_garbage_gets_its_entry_id_so_it_can_be_acked() -> None:
    fake = FakeRedis({b"id-1": b"other", b"id-2": b"\xffgarbage"}, unacked={b"id-1", b"id-2"})
    broker = RedisBroker(client=fake, namespace="ns")  # type: ignore[no-untyped-call]
    fields = decode_in_consumer_thread(broker, b"\xffgarbage")
    assert fields["queue_name"] == "balances"  # acked through the consumer that fetched it
    assert fields["options"] == {"redis_message_id": "id-2"}
    assert fake.keys_read == [f"ns:__acks__.{broker.broker_id}.balances", "ns:balances.msgs"]


def test_a_failing_lookup_still_quarantines() -> None:
    class Broken(FakeRedis):
        def smembers(self, key: str) -> set[bytes]:
            raise ConnectionError("redis went away")

    broker = RedisBroker(client=Broken({}, set()), namespace="ns")  # type: ignore[no-untyped-call]
    fields = decode_in_consumer_thread(broker, b"\xff")
    assert fields["actor_name"] == QUARANTINE.actor_name and fields["options"] == {}


def test_limits_a_sender_writes_into_the_options_are_not_obeyed() -> None:
    # Given a message whose sender asks for an age limit of centuries, no time limit and endless retries
    raw = json.dumps(valid(options={
        "max_age": 10**15, "time_limit": 10**12, "max_retries": 10**9, "min_backoff": 1, "max_backoff": 1,
        "on_success": "billing.onboard_account", "pipe_target": {"actor_name": "x"}, "retries": -50,
        "redis_message_id": "r-1", "eta": 5,
    })).encode()
    # When the worker decodes it
    fields = ENCODER.decode(raw)
    # Then only the worker's own settings apply: the limits are dropped, the retry count is made sane
    assert fields["options"] == {"retries": 0, "redis_message_id": "r-1", "eta": 5}
