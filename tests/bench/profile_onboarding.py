"""``python -m tests.bench.profile_onboarding [-n N] [--cprofile FILE]``: one thread's cost of an onboarding.

The product's own path, without the queue: signed ``account.onboard`` envelopes (the benchmark's
three-period catch-up) handed to ``jobs.pipeline.receive`` exactly as the actor does, in one
thread against a throwaway PostgreSQL database. Prints wall and CPU milliseconds per message and
the statements sent per message; with ``--cprofile`` also writes a cProfile dump to read with
``pstats`` or snakeviz. The queued figures of ``make bench`` add dramatiq's consumer and the
contention of 2 processes × 8 threads; this isolates the Python of one message.
"""

from __future__ import annotations

import argparse
import cProfile
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import event

from jobs.clock import SystemClock
from jobs.context import BrokerDelivery, JobContext
from jobs.envelope import make_envelope
from jobs.onboarding import MESSAGE_TYPE, handle_onboard_account
from jobs.outcomes import Outcome
from jobs.pipeline import receive
from jobs.producers import SIMULATION_PRODUCER, SIMULATION_SECRET, ProducerRegistry
from models.migrations.runner import migrate
from models.tables.store import make_engine, make_session_factory
from tests.bench.bodies import catch_up_body
from worker.logging import configure_logging
from worker.settings import Settings

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


class _Discard:
    def send(self, message: Any) -> None:
        pass


def _envelopes(count: int, prefix: str) -> list[dict[str, Any]]:
    today = datetime.now(UTC).date()
    return [make_envelope(MESSAGE_TYPE, catch_up_body(f"{prefix}-{index:06d}", today),
                          producer=SIMULATION_PRODUCER.name, key_id="sim-1", secret=SIMULATION_SECRET.encode(),
                          now=datetime.now(UTC))
            for index in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--messages", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="threads sharing the engine, as in a worker process")
    parser.add_argument("--cprofile", help="write a cProfile dump here")
    parser.add_argument("--admin", default=ADMIN, help="libpq URL of a database that may CREATE DATABASE")
    args = parser.parse_args(argv)
    name = f"billing_profile_{secrets.token_hex(4)}"
    with psycopg.connect(args.admin, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = args.admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        migrate(url)
        settings = Settings(database_url=url, metrics_port=0, log_format="json")
        configure_logging(settings)  # as in the worker: JSON lines, redacted
        engine = make_engine(url)
        statements = 0

        connects = 0

        @event.listens_for(engine, "before_cursor_execute")
        def _count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        @event.listens_for(engine, "connect")
        def _connect(*_: Any) -> None:
            nonlocal connects
            connects += 1

        ctx = JobContext(settings=settings, clock=SystemClock(), sessions=make_session_factory(engine),
                         registry=ProducerRegistry(producers={SIMULATION_PRODUCER.name: SIMULATION_PRODUCER}),
                         sender=_Discard())

        def run(envelopes: list[dict[str, Any]]) -> None:
            for envelope in envelopes:
                outcome = receive(ctx, MESSAGE_TYPE, envelope, handle_onboard_account,
                                  BrokerDelivery(message_id=f"b-{envelope['id']}", enqueued_at=datetime.now(UTC)))
                if outcome is not Outcome.PROCESSED:
                    raise SystemExit(f"onboarding ended {outcome}")

        run(_envelopes(args.warmup, "warm"))
        envelopes = _envelopes(args.messages, "acct")
        statements = connects = 0
        shares = [envelopes[index::args.threads] for index in range(args.threads)]
        profiler = cProfile.Profile(time.process_time) if args.cprofile else None  # CPU, not waits
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        if args.threads == 1:
            run(envelopes)
        else:
            threads = [threading.Thread(target=run, args=(share,)) for share in shares]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        n = args.messages
        print(f"{n} onboardings: {1000 * wall / n:.2f} ms wall, {1000 * cpu / n:.2f} ms CPU (this process) "
              f"per message, {statements / n:.1f} statements and {connects} new database connections"
              f"{'' if args.threads == 1 else f' ({args.threads} threads)'}")
        engine.dispose()
    finally:
        with psycopg.connect(args.admin, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
