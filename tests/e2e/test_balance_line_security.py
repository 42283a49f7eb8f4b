"""Illegitimate balance lines against a real `billing worker` on PostgreSQL and Redis, and privacy.

One worker process (DEBUG logs, so dramatiq prints every message it receives) gets unsigned,
forged, expired, replayed, wrong-key, body-altered, unpermitted and over-limit lines, with canary
values (an e-mail, a name, secret-looking keys) in the failing ones. Each is refused before any
ledger write, stored once with its code and shown by `billing audit`; over-cap lines are refused or
held as configured; and no canary appears in the worker's log output, in any Redis key of the
namespace (dead-letter hashes included) or in the rejections table.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, func, select, text

from jobs.envelope import make_envelope
from models.tables import Base
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_rejection import BalanceRejection
from models.tables.rejection import Rejection
from tests.integration.producers import CRM_SECRET, SUPPORT_SECRET, line, onboarding, producers
from worker.client import build_message

pytestmark = pytest.mark.e2e

CANARY_EMAIL = "janet.canaryfield@example.org"
CANARY_NAME = "Janet Canaryfield"
CANARY_KEY = "sk_live_CanaryKey7f3a9c2e51b84d06Zq"
CANARY_HEX = secrets.token_hex(32)
CANARY_AUTHOR = "auditor.canary@example.net"
CANARIES = (CANARY_EMAIL, CANARY_NAME, CANARY_KEY, CANARY_HEX, CANARY_AUTHOR, "Canaryfield")
OLD_KEY_UNTIL = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
"""The rotated-out key ``crm-1`` still signs until then."""
ACCEPTED = 6
"""l-once, l-old-key, l-held, and three of the four 45.00 lines of acme-2."""


@dataclass
class Run:
    """What the module's worker was sent, and where to look afterwards."""

    env: dict[str, str]
    engine: Engine
    namespace: str
    log: Path
    tmp: Path
    refused: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """case -> (message id, expected code, account)."""


def _sign(body: dict[str, Any], *, producer: str = "crm", key_id: str = "crm-2", secret: str = CRM_SECRET,
          now: datetime | None = None, message_type: str = "balance_line.create") -> dict[str, Any]:
    return make_envelope(message_type, body, producer=producer, key_id=key_id, secret=secret.encode(),
                         now=now or datetime.now(UTC))


def _canary_line(line_id: str, **fields: Any) -> dict[str, Any]:
    return line(line_id, "10.00", label=f"Refund for {CANARY_EMAIL}", **fields)


def _cases() -> dict[str, tuple[dict[str, Any], str, str]]:
    """case -> (envelope, expected code, account), built now (their signatures are fresh)."""
    unsigned = _sign(_canary_line("l-unsigned"))
    del unsigned["signature"]
    forged = _sign(_canary_line("l-forged", author=CANARY_NAME))
    forged["signature"] = CANARY_KEY
    altered = _sign(_canary_line("l-altered"))
    altered["body"] = {**altered["body"], "amount": "99.00"}
    cases = {
        "unsigned": (unsigned, "unauthorized"),
        "forged": (forged, "unauthorized"),
        "expired": (_sign(_canary_line("l-expired"), now=datetime.now(UTC) - timedelta(seconds=400)), "unauthorized"),
        "wrong_key_id": (_sign(_canary_line("l-wrong-key"), key_id="crm-9"), "unauthorized"),
        "retired_key": (_sign(_canary_line("l-retired"), key_id="crm-0", secret="crm-retired-secret-01234"),
                        "unauthorized"),
        "body_altered": (altered, "unauthorized"),
        "type_not_allowed": (_sign(onboarding("canary-co", name=CANARY_NAME), producer="support", key_id="support-1",
                                   secret=SUPPORT_SECRET, message_type="account.onboard"), "forbidden"),
        "kind_not_allowed": (_sign(_canary_line("l-gift", kind="gift"), producer="support", key_id="support-1",
                                   secret=SUPPORT_SECRET), "forbidden"),
        "invalid_body": (_sign(_canary_line("l-extra", author=CANARY_AUTHOR, api_key=CANARY_HEX)), "invalid"),
        "over_per_line": (_sign(line("l-big", "100.01", author="agent-12")), "limit_exceeded"),
    }
    return {name: (envelope, code, "canary-co" if name == "type_not_allowed" else "acme")
            for name, (envelope, code) in cases.items()}


def _enqueue(broker: RedisBroker, envelope: dict[str, Any]) -> None:
    message = build_message(envelope)
    broker.declare_queue(message.queue_name)
    broker.enqueue(message)


def _count(engine: Engine, query: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def _wait(condition: Callable[[], bool], seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _billing(run: Run, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], env=run.env, cwd=run.tmp, capture_output=True,
                          text=True, timeout=120, check=True)


def _audit(run: Run, account: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_billing(run, "audit", "--account", account, "--csv").stdout)))


def _send_everything(run: Run, broker: RedisBroker) -> None:
    for account in ("acme", "acme-2"):
        _enqueue(broker, _sign(onboarding(account, start=datetime.now(UTC).date().isoformat()),
                               message_type="account.onboard"))
    _wait(lambda: _count(run.engine, text("SELECT count(*) FROM accounts")) == 2)
    once = _sign(line("l-once", "10.00"))
    _enqueue(broker, once)
    _enqueue(broker, _sign(line("l-old-key", "10.00"), key_id="crm-1", secret="crm-old-secret-0123456789"))
    _enqueue(broker, _sign(line("l-held", "80.00")))
    for n in range(4):  # 4 x 45.00 against a daily cap of 150.00: exactly one is refused
        _enqueue(broker, _sign(line(f"l-day-{n}", "45.00", account="acme-2")))
    for name, (envelope, code, account) in _cases().items():
        _enqueue(broker, envelope)
        run.refused[name] = (envelope["id"], code, account)
    _wait(lambda: _count(run.engine, select(func.count()).where(BalanceLine.line_id == "l-once")) == 1)
    _enqueue(broker, dict(once))  # the same envelope again, in a new broker message
    run.refused["replayed"] = (once["id"], "unauthorized", "acme")
    expected = len(run.refused) + 1  # and one of the 45.00 lines
    _wait(lambda: _count(run.engine, select(func.count()).select_from(Rejection)) >= expected)
    _wait(lambda: _count(run.engine, select(func.count()).select_from(BalanceLine)) >= ACCEPTED)
    time.sleep(1.0)  # anything still in flight would show up now


@pytest.fixture(scope="module")
def run(pg_engine: Engine, pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with pg_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    namespace = f"billingtest-{secrets.token_hex(6)}"
    tmp = tmp_path_factory.mktemp("security")
    env = {key: value for key, value in os.environ.items() if not key.startswith("BILLING_")}
    env.update({"BILLING_DATABASE_URL": pg_url, "BILLING_REDIS_URL": redis_url, "BILLING_NAMESPACE": namespace,
                "BILLING_PRODUCERS_JSON": json.dumps({"producers": producers(old_key_until=OLD_KEY_UNTIL)}),
                "BILLING_METRICS_PORT": "0", "BILLING_LOG_FORMAT": "json", "BILLING_LOG_LEVEL": "DEBUG"})
    state = Run(env=env, engine=pg_engine, namespace=namespace, log=tmp / "worker.log", tmp=tmp)
    client = redis.Redis.from_url(redis_url)
    with state.log.open("w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "worker.cli", "worker", "--processes", "1", "--threads", "2"],
                                  env=env, stdout=log, stderr=log, cwd=tmp)
        try:
            _send_everything(state, RedisBroker(url=redis_url, namespace=f"{namespace}:dramatiq", middleware=[]))
            yield state
        finally:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
            for key in client.scan_iter(match=f"{namespace}*", count=1000):
                client.delete(key)
            client.close()


CASE_NAMES = [*_cases(), "replayed"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_each_illegitimate_message_is_refused_once_and_audited(run: Run, case: str) -> None:
    message_id, code, account = run.refused[case]
    with run.engine.connect() as connection:
        stored = connection.execute(select(Rejection.code).where(Rejection.message_id == message_id)).scalars().all()
    assert stored == [code]
    audited = [row for row in _audit(run, account) if row["message_id"] == message_id]
    assert [row["event"] for row in audited if row["event"].startswith("rejected")] == [f"rejected:{code}"]


def test_nothing_refused_reached_the_ledger(run: Run) -> None:
    with run.engine.connect() as connection:
        lines = sorted(connection.execute(select(BalanceLine.line_id)).scalars())
        entries = connection.execute(select(func.count()).select_from(BalanceEntry)).scalar_one()
    day_lines = [line_id for line_id in lines if line_id.startswith("l-day-")]
    assert len(lines) == ACCEPTED and len(day_lines) == 3
    assert sorted(set(lines) - set(day_lines)) == ["l-held", "l-old-key", "l-once"]
    assert entries == 0


def test_over_cap_lines_are_refused_or_held_as_configured(run: Run) -> None:
    with run.engine.connect() as connection:
        held = connection.execute(select(BalanceLine.requires_approval).where(BalanceLine.line_id == "l-held"))
        assert held.scalar_one() is True
        day = connection.execute(select(Rejection.code, Rejection.reason).join(
            BalanceRejection, BalanceRejection.rejection_id == Rejection.id
        ).where(BalanceRejection.account_id == "acme-2")).all()
    assert [code for code, _ in day] == ["limit_exceeded"]
    assert "to 180.00, above its per_account_day limit of 150.00 USD" in day[0][1]
    [row] = [row for row in _audit(run, "acme") if row["line_id"] == "l-held"]
    assert row["event"] == "pending_approval" and row["amount_minor"] == "8000"


def _redis_text(client: redis.Redis, namespace: str) -> bytes:
    """Every key of the namespace with what it holds: queues, dead-letter hashes, streams."""
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    parts: list[bytes] = []
    for key in keys:
        kind = client.type(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"hash":
            parts += [b"%s=%s" % pair for pair in client.hgetall(key).items()]
        elif kind == b"list":
            parts += client.lrange(key, 0, -1)
        elif kind == b"set":
            parts += list(client.smembers(key))
        elif kind == b"zset":
            parts += client.zrange(key, 0, -1)
        elif kind == b"stream":
            parts += [json.dumps({k.decode(): v.decode() for k, v in fields.items()}).encode()
                      for _, fields in client.xrange(key)]
    return b"\n".join([*keys, *parts])


def test_no_canary_in_logs_redis_or_rejection_rows(run: Run, redis_url: str) -> None:
    logs = run.log.read_text()
    assert '"event": "message_rejected"' in logs  # the worker processes log through the redacting chain
    assert "Received message" in logs and "[redacted]" in logs  # dramatiq's DEBUG lines, message reprs redacted
    client = redis.Redis.from_url(redis_url)
    try:
        stored = _redis_text(client, run.namespace)
    finally:
        client.close()
    with run.engine.connect() as connection:
        rows = connection.execute(select(Rejection)).mappings().all()
    rejection_text = json.dumps([dict(row) for row in rows], default=str)
    assert len(rows) == len(run.refused) + 1
    for canary in CANARIES:
        assert canary not in logs, canary
        assert canary.encode() not in stored, canary
        assert canary not in rejection_text, canary


def test_an_authenticated_refusal_keeps_its_author_for_the_audit_only(run: Run) -> None:
    """The audit trail is finance's record (as ``balance_lines.author`` is); the dead letters are not."""
    message_id, _, _ = run.refused["invalid_body"]
    [row] = [row for row in _audit(run, "acme") if row["message_id"] == message_id]
    assert (row["event"], row["author"], row["producer"]) == ("rejected:invalid", CANARY_AUTHOR, "crm")
    forged_id, _, _ = run.refused["forged"]
    [forged] = [row for row in _audit(run, "acme") if row["message_id"] == forged_id]
    assert (forged["author"], forged["producer"]) == ("", "unverified:crm")
