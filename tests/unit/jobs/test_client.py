"""The producer side: messages on the right queue and actor, batches, and body files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from jobs.body_files import BodyFileError, read_bodies
from jobs.envelope import verify
from jobs.errors import InvalidMessage
from jobs.handlers import HANDLERS
from jobs.producers import PRODUCERS_ENV
from jobs.routes import QUARANTINE, ROUTES, route_for
from jobs.signer import KEY_ID_ENV, PRODUCER_ENV, SECRET_ENV, Signer
from tests.unit.jobs.helpers import NEW_SECRET, NOW, line_body, onboard_body, registry
from worker.client import build_message, send, send_many
from worker.settings import Settings

CRM = Signer("crm", "crm-2026", NEW_SECRET.encode())


@pytest.mark.parametrize(
    ("message_type", "queue", "actor"),
    [
        ("account.onboard", "onboarding", "onboarding.onboard_account"),
        ("balance_line.create", "balances", "balances.create_balance_line"),
        ("balance_line.reverse", "balances", "balances.reverse_balance_line"),
        ("bill_run.trigger", "invoicing", "invoicing.trigger_bill_run"),
    ],
)
def test_each_type_is_built_on_its_queue_and_actor(message_type: str, queue: str, actor: str) -> None:
    envelope = CRM.envelope(message_type, {}, now=NOW)
    message = build_message(envelope)
    assert (message.queue_name, message.actor_name) == (queue, actor) == route_for(message_type)
    assert message.args == (envelope,) and message.kwargs == {} and message.options == {}


def test_the_route_table_is_complete_and_quarantine_is_apart() -> None:
    assert list(ROUTES) == ["account.onboard", "balance_line.create", "balance_line.reverse", "bill_run.trigger",
                            "subscription.add", "subscription.change", "subscription.pause", "subscription.resume",
                            "subscription.cancel", "account.update"]
    assert set(ROUTES) == set(HANDLERS), "every routed type has a handler"
    assert QUARANTINE == ("quarantine", "quarantine.undecodable")
    with pytest.raises(ValueError, match="unknown message type 'x'"):
        route_for("x")


def test_send_enqueues_a_verifiable_envelope_without_any_actor_declared() -> None:
    broker = StubBroker()
    envelope_id = send(broker, "balance_line.create", line_body(), CRM, now=NOW)
    [data] = list(broker.queues["balances"].queue)
    message = dramatiq.Message.decode(data)
    assert message.actor_name == "balances.create_balance_line"
    verified = verify(message.args[0], registry(), now=NOW, tolerance_seconds=300)
    assert verified.id == envelope_id and verified.body == line_body()


def test_send_can_check_the_body_first() -> None:
    broker = StubBroker()
    with pytest.raises(InvalidMessage, match=r"amount: '5\.001' has more than 2 decimals"):
        send(broker, "balance_line.create", line_body(amount="5.001"), CRM, now=NOW, validate=True)
    assert "balances" not in broker.queues
    send(broker, "balance_line.create", line_body(amount="5.001"), CRM, now=NOW)  # the worker will judge
    assert broker.queues["balances"].qsize() == 1


def test_send_many_loops_on_other_brokers() -> None:
    broker = StubBroker()
    items = [("balance_line.create", line_body(line_id=f"c-{i}")) for i in range(7)]
    items.append(("account.onboard", onboard_body()))
    assert send_many(broker, items, CRM, now=NOW, batch_size=3) == 8
    assert broker.queues["balances"].qsize() == 7 and broker.queues["onboarding"].qsize() == 1
    with pytest.raises(ValueError, match="batch_size"):
        send_many(broker, items, CRM, now=NOW, batch_size=0)


class FakePipeline:
    def __init__(self, log: list[list[Any]]) -> None:
        self.log, self.calls = log, []  # type: ignore[var-annotated]

    def execute(self) -> None:
        self.log.append(self.calls)


class FakeRedis:
    """Records what RedisBroker's dispatch script would be asked to run, batch by batch."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def register_script(self, script: bytes) -> Any:
        def run(keys: list[str] | None = None, args: list[Any] | None = None, client: Any = None) -> Any:
            if client is None:  # the broker asking for the Lua stack size
                return 8000
            client.calls.append((keys, args))
            return None

        return run

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert transaction is False
        return FakePipeline(self.batches)


def test_send_many_pipelines_redis_enqueues_like_the_broker_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RedisBroker, "_max_unpack_size_val", None)
    fake = FakeRedis()
    broker = RedisBroker(client=fake, namespace="ns", maintenance_chance=0)  # type: ignore[no-untyped-call]
    items = [("balance_line.create", line_body(line_id=f"c-{i}")) for i in range(5)]
    assert send_many(broker, items, CRM, now=NOW, batch_size=2) == 5
    assert [len(batch) for batch in fake.batches] == [2, 2, 1]
    keys, args = fake.batches[0][0]
    command, _, queue, broker_id, heartbeat, dead_ttl, maintenance, unpack, entry_id, payload = args
    assert keys == ["ns"] and (command, queue, broker_id, maintenance, unpack) == (
        "enqueue", "balances", broker.broker_id, 0, 4000
    )
    assert (heartbeat, dead_ttl) == (broker.heartbeat_timeout, broker.dead_message_ttl)
    message = dramatiq.Message.decode(payload)
    assert message.options == {"redis_message_id": entry_id}
    assert message.args[0]["body"]["line_id"] == "c-0"
    assert "balances" in broker.get_declared_queues()


@pytest.fixture
def no_producer_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (PRODUCER_ENV, KEY_ID_ENV, SECRET_ENV, PRODUCERS_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("no_producer_env")
def test_the_signer_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PRODUCER_ENV, "crm")
    monkeypatch.setenv(KEY_ID_ENV, "crm-2026")
    monkeypatch.setenv(SECRET_ENV, NEW_SECRET)
    assert Signer.from_settings(Settings(producers_file=None)) == CRM
    assert NEW_SECRET not in repr(CRM)
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ValueError, match=SECRET_ENV):
        Signer.from_settings(Settings(producers_file=None))


@pytest.mark.usefixtures("no_producer_env")
def test_by_default_the_signer_is_the_local_development_producer(tmp_path: Path) -> None:
    signer = Signer.from_settings(Settings(producers_file=None))
    assert (signer.producer, signer.key_id) == ("local", "local-1")
    assert signer.secret == (tmp_path / ".billing" / "local-producer.key").read_text().strip().encode()


@pytest.mark.usefixtures("no_producer_env")
def test_with_producers_configured_there_is_no_default_signer(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {"keys": [{"id": "k", "secret": NEW_SECRET}], "types": []}
    monkeypatch.setenv(PRODUCERS_ENV, json.dumps({"producers": {"crm": spec}}))
    with pytest.raises(ValueError, match="no local development producer"):
        Signer.from_settings(Settings(producers_file=None))


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "bodies.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_read_bodies_reads_one_pretty_printed_document(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(onboard_body(), indent=2))
    assert list(read_bodies(path)) == [onboard_body()]


def test_read_bodies_reads_json_lines_and_skips_blank_lines(tmp_path: Path) -> None:
    lines = [json.dumps(line_body(line_id=f"c-{i}")) for i in range(3)]
    path = write(tmp_path, "\n" + lines[0] + "\n\n" + lines[1] + "\n" + lines[2])
    assert [body["line_id"] for body in read_bodies(path)] == ["c-0", "c-1", "c-2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": "1"}\n{"b": "2"}\n{"amount": 5.50}\n', 'line 3: 5.50 is a JSON number with a fraction'),
        ('{"a": "1"}\n{"amount": 1e3}\n', "line 2: 1e3 is a JSON number with a fraction"),
        ('{"a": NaN}\n', "line 1: NaN is a JSON number with a fraction"),
        ('{\n  "label": "3.5 stars",\n  "n": 2,\n  "amount": 30.5\n}\n', "line 4: 30.5 is a JSON number"),
        ('{"a": "1"}\n[1, 2]\n', "line 2: a body must be a JSON object, not list"),
        ('{"a": "1"}\n{"b": \n', "line 2: not valid JSON"),
        ('{\n  "a": "1",\n  oops\n}\n', "line 3: not valid JSON"),
        ("\n\n", "holds no message body"),
        (b'{"label": "\xff"}', "not UTF-8 text"),
    ],
)
def test_read_bodies_errors_name_the_line(tmp_path: Path, text: str | bytes, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BodyFileError) as caught:
        list(read_bodies(path))
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)
