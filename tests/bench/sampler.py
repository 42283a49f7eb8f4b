"""Background probes during a timed part: peak RSS of each worker process, and foreign CPU.

Memory is sampled every ``interval`` (100 ms) from the worker processes under a started worker.
Foreign CPU is the machine's busy CPU time minus what this run's processes used (this process and
its descendants, the PostgreSQL backends of the run's database and the server's background
processes, and the Redis server): how much other tenants of the 2-core machine took meanwhile.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil
import psycopg

from tests.bench.processes import Started, worker_children

MB = 1024 * 1024


KTHREADD = 2
"""Parent of the kernel's threads: their I/O work (WAL and log writes) is counted as ours, not foreign."""


def busy_cpu_seconds() -> float:
    """User + nice + system time of all CPUs (interrupt time belongs to no process and is left out)."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system)


def _cpu_of(process: psutil.Process) -> float:
    cpu = process.cpu_times()
    return float(cpu.user + cpu.system)


GROUPS = ("python", "postgres", "redis", "kernel")
"""Where our CPU went: the Python processes (workers, relay, this harness), the database, the broker,
the kernel's threads."""


@dataclass
class CpuLedger:
    """CPU seconds used by our processes since ``started``; a pid first seen later started at zero."""

    started: float
    baselines: dict[int, float] = field(default_factory=dict)
    latest: dict[int, float] = field(default_factory=dict)
    groups: dict[int, str] = field(default_factory=dict)

    def observe(self, process: psutil.Process, group: str) -> None:
        try:
            with process.oneshot():
                used, born = _cpu_of(process), process.create_time()
        except psutil.Error:
            return
        if process.pid not in self.baselines:
            self.baselines[process.pid] = 0.0 if born >= self.started else used
            self.groups[process.pid] = group
        self.latest[process.pid] = used

    def total(self) -> float:
        return sum(self.latest[pid] - self.baselines[pid] for pid in self.latest)

    def by_group(self) -> dict[str, float]:
        totals = dict.fromkeys(GROUPS, 0.0)
        for pid, used in self.latest.items():
            totals[self.groups[pid]] += used - self.baselines[pid]
        return totals


@dataclass
class Usage:
    """What a part cost: wall seconds, CPU of the other tenants, our CPU seconds by group, peak RSS (MB)
    per worker pid."""

    seconds: float
    foreign_cores: float
    peak_rss_mb: dict[int, float]
    cpu_seconds: dict[str, float] = field(default_factory=dict)


class Sampler(threading.Thread):
    """``with Sampler(...) as sampler: ...`` then ``sampler.usage``."""

    def __init__(self, conninfo: str, redis_pid: int | None, worker: Started | None = None,
                 interval: float = 0.1, cpu_every: int = 5) -> None:
        super().__init__(daemon=True, name="bench-sampler")
        self.conninfo, self.redis_pid, self.worker = conninfo, redis_pid, worker
        self.interval, self.cpu_every = interval, cpu_every
        self.peaks: dict[int, int] = {}
        self.halt = threading.Event()
        self.usage = Usage(0.0, 0.0, {})

    def __enter__(self) -> Sampler:
        self.begin_wall, self.begin_busy = time.monotonic(), busy_cpu_seconds()
        self.ledger = CpuLedger(time.time())
        self.connection = psycopg.connect(self.conninfo, autocommit=True)
        self._observe_ours(kernel=True)
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt.set()
        self.join()
        self._observe_ours(kernel=True)
        self.connection.close()
        wall = time.monotonic() - self.begin_wall
        foreign = max(0.0, busy_cpu_seconds() - self.begin_busy - self.ledger.total())
        self.usage = Usage(wall, foreign / wall if wall else 0.0,
                           {pid: rss / MB for pid, rss in sorted(self.peaks.items())}, self.ledger.by_group())

    def run(self) -> None:
        tick = 0
        children: list[psutil.Process] = []
        while not self.halt.wait(self.interval):
            if self.worker is not None and tick % 10 == 0:
                children = worker_children(self.worker)  # the worker processes do not change: list them once a second
            self._sample_memory(children)
            tick += 1
            if tick % self.cpu_every == 0:
                self._observe_ours()

    def _sample_memory(self, children: list[psutil.Process]) -> None:
        for child in children:
            try:
                rss = child.memory_info().rss
            except psutil.Error:
                continue
            self.peaks[child.pid] = max(rss, self.peaks.get(child.pid, 0))

    def _our_pids(self, kernel: bool) -> dict[int, str]:
        me = psutil.Process()
        pids = dict.fromkeys([me.pid, *(child.pid for child in me.children(recursive=True))], "python")
        if kernel:
            pids.update(dict.fromkeys((child.pid for child in psutil.Process(KTHREADD).children()), "kernel"))
        rows = self.connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR datname IS NULL").fetchall()
        pids.update(dict.fromkeys((int(row[0]) for row in rows), "postgres"))
        if self.redis_pid:
            pids[self.redis_pid] = "redis"
        return pids

    def _observe_ours(self, kernel: bool = False) -> None:
        for pid, group in self._our_pids(kernel).items():
            try:
                self.ledger.observe(psutil.Process(pid), group)
            except psutil.Error:
                continue
