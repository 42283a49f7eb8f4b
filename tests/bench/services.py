"""A throwaway PostgreSQL database and Redis namespace for one benchmark run, always cleaned up.

Like the test fixtures (``tests/conftest.py``): the database is created from the ``test`` admin
database and dropped ``WITH (FORCE)`` at the end, also when the run fails or is interrupted; every
Redis key under the namespace is deleted.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

import psycopg
import redis

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_ADMIN_DB = "test"
REDIS_URL = "redis://127.0.0.1:6379/0"
PRODUCER = "bench"
KEY_ID = "bench-1"


@dataclass(frozen=True)
class Services:
    """Where one run writes: its database, its Redis namespace and its producer secret."""

    user: str
    database: str
    redis_url: str
    namespace: str
    secret: str = field(repr=False)

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg://{self.user}@{PG_HOST}:{PG_PORT}/{self.database}"

    @property
    def conninfo(self) -> str:
        """The same database for plain psycopg."""
        return f"host={PG_HOST} port={PG_PORT} dbname={self.database} user={self.user}"

    @property
    def dramatiq_prefix(self) -> str:
        """Key prefix of the product broker's queues (``worker.broker``: ``<namespace>:dramatiq``)."""
        return f"{self.namespace}:dramatiq"

    @property
    def stream_key(self) -> str:
        return f"{self.namespace}:events:invoice"

    def env(self) -> dict[str, str]:
        """The environment of every product process (and of this one) for this run."""
        producers = {PRODUCER: {"keys": [{"id": KEY_ID, "secret": self.secret}],
                                "types": ["account.onboard", "bill_run.trigger"]}}
        return {
            "BILLING_DATABASE_URL": self.sqlalchemy_url, "BILLING_REDIS_URL": self.redis_url,
            "BILLING_NAMESPACE": self.namespace, "BILLING_PRODUCERS_JSON": json.dumps({"producers": producers}),
            "BILLING_PRODUCER": PRODUCER, "BILLING_PRODUCER_KEY_ID": KEY_ID, "BILLING_PRODUCER_SECRET": self.secret,
            "BILLING_METRICS_PORT": "0",
        }


def admin_connection() -> tuple[psycopg.Connection[tuple[object, ...]], str]:
    """An autocommit connection to the admin database, as ``postgres`` or else the OS user."""
    errors: list[str] = []
    for user in dict.fromkeys(("postgres", getpass.getuser())):
        try:
            conn = psycopg.connect(host=PG_HOST, port=PG_PORT, dbname=PG_ADMIN_DB, user=user, autocommit=True,
                                   connect_timeout=5)
        except psycopg.OperationalError as error:
            errors.append(f"{user}: {error}".strip())
            continue
        return conn, user
    raise psycopg.OperationalError("; ".join(errors))


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def delete_namespace(client: redis.Redis, namespace: str) -> int:
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start:start + 1000])
    return len(keys)


@contextmanager
def throwaway_services() -> Iterator[Services]:
    """Create the database and pick the namespace; drop and delete both on the way out, whatever happens."""
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    admin, user = admin_connection()
    token = secrets.token_hex(6)
    services = Services(user=user, database=f"billing_bench_{token}", redis_url=REDIS_URL,
                        namespace=f"billingbench-{token}", secret=secrets.token_hex(24))
    with admin:
        admin.execute(f'CREATE DATABASE "{services.database}"')
    try:
        yield services
    finally:
        admin, _ = admin_connection()
        with admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{services.database}" WITH (FORCE)')
        client = redis.Redis.from_url(services.redis_url)
        try:
            delete_namespace(client, services.namespace)
        finally:
            client.close()
        signal.signal(signal.SIGTERM, previous)


def apply_env(services: Services) -> None:
    """Point this process's product imports (settings, broker, runtime) at the run's services."""
    os.environ.update(services.env())
