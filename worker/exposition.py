"""The dramatiq middleware that has a worker's metrics served, summed over its processes."""

from __future__ import annotations

import os
from collections.abc import Callable

import dramatiq
from dramatiq.middleware import Middleware
from prometheus_client import multiprocess

from jobs.metrics import WORKER_PROCESSES
from worker.health import serve_worker_endpoint
from worker.metrics import multiprocess_dir


class MetricsExposition(Middleware):
    """Counts live worker processes and has dramatiq's CLI fork one process serving their sum.

    ``forks`` is read by dramatiq's CLI in its first worker process; the forked function
    (``worker.health.serve_worker_endpoint``) answers ``/metrics`` and ``/healthz`` on ``port``.
    Without a multiprocess directory there is nothing to sum, and no fork.
    """

    def __init__(self, port: int) -> None:
        self.port = port

    @property
    def forks(self) -> list[Callable[[], int]]:
        if not self.port or multiprocess_dir() is None:
            return []
        return [serve_worker_endpoint]

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        WORKER_PROCESSES.set(1)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        path = multiprocess_dir()
        if path is not None:
            multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]
