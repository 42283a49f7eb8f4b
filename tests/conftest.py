"""Shared fixtures: throwaway PostgreSQL databases, SQLite files and Redis namespaces.

Integration tests run against the real services of the machine: PostgreSQL on 127.0.0.1:5432
(trust auth, an existing ``test`` database used only to create and drop per-session databases),
Redis on 127.0.0.1:6379 and, for the RabbitMQ tests, RabbitMQ on 127.0.0.1:5672 (guest/guest;
each test gets a virtual host of its own, made and deleted with ``rabbitmqctl``). When a service
is unreachable the tests that need it are skipped,
except under CI (env var ``CI`` set), where that is a failure.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
import redis
from sqlalchemy import Engine, text

from models.migrations.runner import migrate
from models.tables import Base
from models.tables.store import make_engine

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_ADMIN_DB = "test"
REDIS_URL = "redis://127.0.0.1:6379/0"
RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672


def _unavailable(what: str, error: Exception) -> NoReturn:
    """Skip on a developer machine, fail under CI: a CI run must not pass by skipping."""
    message = f"{what} is unreachable ({error})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI is set, so this is an error, not a skip")
    pytest.skip(f"{message}; set CI=1 to make this a failure")


def _pg_admin_connection() -> tuple[psycopg.Connection[tuple[object, ...]], str]:
    """An autocommit connection to the admin database, as ``postgres`` or else the OS user."""
    errors: list[str] = []
    for user in dict.fromkeys(("postgres", getpass.getuser())):
        try:
            conn = psycopg.connect(
                host=PG_HOST, port=PG_PORT, dbname=PG_ADMIN_DB, user=user, autocommit=True, connect_timeout=5
            )
        except psycopg.OperationalError as error:
            errors.append(f"{user}: {error}".strip())
            continue
        return conn, user
    raise psycopg.OperationalError("; ".join(errors))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the session (``billing_test_<hex>``), dropped afterwards."""
    try:
        admin, user = _pg_admin_connection()
    except psycopg.OperationalError as error:
        _unavailable(f"PostgreSQL at {PG_HOST}:{PG_PORT}", error)
    name = f"billing_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        admin, _ = _pg_admin_connection()
        with admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on the session database, migrated to head."""
    migrate(pg_url)
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clean_pg(pg_engine: Engine) -> Engine:
    """``pg_engine`` with every table emptied and every id sequence restarted.

    TRUNCATE does not fire the ledger's append-only triggers (they are UPDATE/DELETE row
    triggers), so this works on the ledger tables too.
    """
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with pg_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return pg_engine


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL for a SQLite file that does not exist yet, in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'billing.sqlite3'}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The local Redis, checked once per session."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        _unavailable(f"Redis at {REDIS_URL}", error)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_namespace(redis_url: str) -> Iterator[str]:
    """A unique key prefix (``billingtest-<hex>``) for one test; its keys are deleted afterwards."""
    namespace = f"billingtest-{secrets.token_hex(6)}"
    yield namespace
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def rabbitmq_available() -> None:
    """RabbitMQ answers on 5672 and ``rabbitmqctl`` can make virtual hosts."""
    try:
        socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=5).close()
    except OSError as error:
        _unavailable(f"RabbitMQ at {RABBITMQ_HOST}:{RABBITMQ_PORT}", error)
    if shutil.which("rabbitmqctl") is None:
        _unavailable("rabbitmqctl (to make a virtual host per test)", FileNotFoundError("rabbitmqctl"))


@pytest.fixture
def rabbitmq_vhost(rabbitmq_available: None) -> Iterator[str]:
    """A fresh virtual host (``billingtest-<hex>``) for one test, deleted with its queues afterwards."""
    vhost = f"billingtest-{secrets.token_hex(6)}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        _rabbitmqctl("delete_vhost", vhost)


def amqp_url(vhost: str, port: int = RABBITMQ_PORT) -> str:
    return f"amqp://guest:guest@{RABBITMQ_HOST}:{port}/{vhost}"


@pytest.fixture
def rabbitmq_url(rabbitmq_vhost: str) -> str:
    """The AMQP URL of this test's own virtual host."""
    return amqp_url(rabbitmq_vhost)
