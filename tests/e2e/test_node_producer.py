"""The Node.js producer in examples/producers/node against a real `billing worker` and `billing relay`.

It signs an ``account.onboard`` envelope and writes the dramatiq message into Redis itself, with no
Python on the producer side: the invoice and its ``invoice.created`` event must appear as for
`billing enqueue`, with no rejection. A second test compares what the Node producer leaves in Redis
with what dramatiq's own ``RedisBroker.enqueue`` leaves, key by key.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, func, select, text

from jobs.signer import Signer
from models.tables.invoice import Invoice
from tests.e2e.stack import SECRET, onboarding, running, scalar, stack_environment, wait_for
from worker.client import send

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("node") is None, reason="node (Node.js 20) is not on PATH"),
]

PRODUCER = Path(__file__).resolve().parents[2] / "examples" / "producers" / "node"


def node_send(env: dict[str, str], message_type: str, body_file: Path) -> str:
    """Run ``node send.mjs``; the envelope id it printed."""
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run([node, "send.mjs", message_type, str(body_file)], cwd=PRODUCER, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed: dict[str, str] = json.loads(done.stdout)
    return printed["id"]


def stream_events(client: redis.Redis, namespace: str) -> list[dict[str, Any]]:
    return [json.loads(fields[b"event"]) for _, fields in client.xrange(f"{namespace}:events:invoice")]


def test_a_node_onboarding_gives_the_invoice_and_its_event(
    clean_pg: Engine, pg_url: str, redis_url: str, redis_namespace: str, tmp_path: Path
) -> None:
    env = stack_environment(pg_url, redis_url, redis_namespace)
    body = onboarding("node-zoe")
    body["account"]["name"] = "Zoë 東京 🚀"  # non-ASCII text must sign the same in both languages
    body_file = tmp_path / "onboard.json"
    body_file.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    client = redis.Redis.from_url(redis_url)

    with running(env, tmp_path / "stack.log", ["worker", "--processes", "1", "--threads", "2"], ["relay"]):
        envelope_id = node_send(env, "account.onboard", body_file)
        wait_for(lambda: len(stream_events(client, redis_namespace)) >= 1, 90, "the invoice.created event")

    assert scalar(clean_pg, "SELECT count(*) FROM rejections") == 0, (tmp_path / "stack.log").read_text()
    with clean_pg.connect() as connection:
        invoices = connection.execute(select(Invoice.number, Invoice.account_id)).all()
        delivered = connection.execute(
            text("SELECT message_type, deliveries FROM message_deliveries WHERE message_id = :id"), {"id": envelope_id}
        ).one()
        name = connection.execute(text("SELECT name FROM accounts WHERE id = 'node-zoe'")).scalar_one()
    assert [account for _, account in invoices] == ["node-zoe"] * len(invoices) and invoices
    assert tuple(delivered) == ("account.onboard", 1)
    assert name == "Zoë 東京 🚀"
    events = stream_events(client, redis_namespace)
    assert len(events) == len(invoices)
    assert {(event["type"], event["subject"]) for event in events} == {("invoice.created", "node-zoe")}
    assert {event["data"]["number"] for event in events} == {number for number, _ in invoices}
    assert scalar(clean_pg, select(func.count()).select_from(Invoice)) == len(invoices)


def test_the_node_producer_leaves_what_dramatiqs_enqueue_leaves(
    redis_url: str, redis_namespace: str, tmp_path: Path
) -> None:
    env = stack_environment("sqlite://", redis_url, f"{redis_namespace}-node")
    body_file = tmp_path / "onboard.json"
    body_file.write_text(json.dumps(onboarding("acme")))
    client = redis.Redis.from_url(redis_url)
    node_send(env, "account.onboard", body_file)
    broker = RedisBroker(url=redis_url, namespace=f"{redis_namespace}-py:dramatiq", middleware=[])
    send(broker, "account.onboard", onboarding("acme"), Signer("crm", "crm-1", SECRET.encode()),
         now=datetime.now(UTC))

    def layout(namespace: str) -> dict[str, str]:
        keys = [key.decode() for key in client.scan_iter(match=f"{namespace}:*")]
        return {key.removeprefix(namespace): client.type(key).decode() for key in keys}

    node_keys, python_keys = layout(f"{redis_namespace}-node"), layout(f"{redis_namespace}-py")
    python_keys.pop(":dramatiq:__heartbeats__")  # dramatiq's script also records the sender's broker id
    assert node_keys == python_keys == {":dramatiq:onboarding": "list", ":dramatiq:onboarding.msgs": "hash"}

    def message(namespace: str) -> dict[str, Any]:
        [entry_id] = client.lrange(f"{namespace}:dramatiq:onboarding", 0, -1)
        stored: dict[str, Any] = json.loads(client.hget(f"{namespace}:dramatiq:onboarding.msgs", entry_id) or b"")
        assert stored["options"] == {"redis_message_id": entry_id.decode()}
        return stored

    node_message, python_message = message(f"{redis_namespace}-node"), message(f"{redis_namespace}-py")
    assert set(node_message) == set(python_message)
    for field in ("queue_name", "actor_name", "kwargs"):
        assert node_message[field] == python_message[field]
    assert set(node_message["args"][0]) == set(python_message["args"][0])
    assert node_message["args"][0]["body"] == python_message["args"][0]["body"]
    assert isinstance(node_message["message_timestamp"], int)
