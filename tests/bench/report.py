"""``docs/benchmarks.md``: the figures, the targets with PASS or MISS, and how they were measured.

Text below ``NOTES_MARKER`` in an existing file is hand-written analysis and is kept as it is
when the file is regenerated.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tests.bench.results import Results, simulate_targets
from tests.bench.throughput import Throughput

NOTES_MARKER = "<!-- Everything below this line is kept when `make bench` regenerates the file. -->"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _cpu(usage: Any, units: int) -> str:
    """Our CPU per unit of work in ms: Python processes / PostgreSQL / Redis."""
    cpu = usage.cpu_seconds
    return " / ".join(f"{cpu.get(group, 0.0) * 1000 / units:.2f}" for group in ("python", "postgres", "redis"))


def _mb(values: Iterable[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in values) or "-"


def machine_section(results: Results) -> list[str]:
    m = results.machine
    pg = m["postgresql"]
    rows = [
        ("date", m["date"]), ("CPU", f"{m['cpus']} × {m['cpu_model']}"), ("memory", f"{m['memory_gib']} GiB"),
        ("OS", m["os"]), ("Python", m["python"]),
        ("PostgreSQL", f"{pg['server_version']} (fsync={pg['fsync']}, synchronous_commit={pg['synchronous_commit']}, "
                       f"shared_buffers={pg['shared_buffers']}, max_wal_size={pg.get('max_wal_size')}, "
                       f"checkpoint_timeout={pg.get('checkpoint_timeout')})"),
        ("Redis", m["redis"]),
        ("packages", ", ".join(f"{name} {version}" for name, version in m["packages"].items())),
        ("checkout", m["commit"]), ("load average at start", " / ".join(str(v) for v in m["load_average"])),
    ]
    return ["## Machine", "", *table(("", ""), rows)]


def settings_section(results: Results) -> list[str]:
    s = results.settings
    return ["## Worker settings", "", *table(("setting", "value"), s.items())]


def targets_section(results: Results) -> list[str]:
    rows = [(t.name, t.figure, t.goal, f"**{t.verdict}**", t.margin) for t in results.targets()]
    return ["## Targets", "", *table(("target", "measured", "goal", "verdict", "margin"), rows)]


def bill_run_section(results: Results) -> list[str]:
    if not results.bill_runs:
        return []
    batch = results.settings.get("bill_run_batch_size")
    rows = [
        (_n(run.accounts), f"{run.seconds:.2f}", f"{run.published_seconds:.2f}", _n(run.invoices_per_second),
         _n(run.rows),
         _n(run.rows_per_second), _n(run.copy.batch_rows_per_second), f"**{run.copy_ratio:.2f}**",
         _n(run.copy.one_txn_rows_per_second), f"{run.copy_one_txn_ratio:.2f}", _mb(run.peak_rss_mb),
         _cpu(run.usage, run.accounts), f"{run.usage.foreign_cores:.2f} / {run.copy.foreign_cores:.2f}",
         f"{run.checkpoints} / {run.copy.checkpoints}")
        for run in results.bill_runs
    ]
    written = [(_n(run.accounts), *(_n(run.written[t]) for t in ("invoices", "invoice_lines", "outbox",
                                                                  "balance_entries"))) for run in results.bill_runs]
    return [
        "## 1. Bill run", "",
        f"Accounts due today (one monthly 10.00 USD period each), one `bill_run.trigger`, "
        f"{results.settings['processes']} worker processes and a relay. Wall time from the trigger to the run's row "
        f"reading `finished`; *published*: to the last event on the stream (the relay numbers each invoice just "
        f"before publishing its event). COPY: the same rows, read back, copied into empty look-alike tables (same "
        f"indexes, checks and foreign keys), in transactions of {batch} accounts (the bill run's batch) and as one "
        "transaction; the ratio is ours ÷ COPY. The run and each COPY start right after a `CHECKPOINT`.", "",
        *table(("accounts", "wall s", "published s", "invoices/s", "rows written", "rows/s",
                f"COPY rows/s ({batch}/txn)",
                "ratio", "COPY rows/s (1 txn)", "ratio", "peak RSS per worker (MB)",
                "CPU ms per account: Python / PostgreSQL / Redis", "foreign CPU (cores): run / COPY",
                "checkpoints: run / COPY"), rows),
        "Rows written:", "",
        *table(("accounts", "invoices", "invoice_lines", "outbox", "balance_entries"), written),
    ]


def _throughput_row(part: Throughput) -> tuple[Any, ...]:
    enqueue = _n(part.enqueue_per_second) if part.enqueue_per_second else "-"
    return (part.name, _n(part.messages), f"**{_n(part.per_second)}**", f"{part.seconds:.2f}",
            f"{part.startup_seconds:.2f}", enqueue, _mb(part.usage.peak_rss_mb.values()),
            _cpu(part.usage, part.messages), f"{part.usage.foreign_cores:.2f}")


def onboarding_section(results: Results) -> list[str]:
    parts = [part for part in (results.onboarding, results.noop, results.bare) if part is not None]
    if not parts:
        return []
    lines = [
        "## 2. Onboarding path", "",
        "`account.onboard` with a three-period catch-up (stub + 2 periods, one invoice of 3 lines), all enqueued "
        "before the workers start; msgs/s = (N − 1) ÷ (first ack → last ack), polled on the queue's message hash "
        "every 10 ms, so worker start-up is excluded (shown apart). The no-op actor runs on the same broker with "
        "the same processes, threads and `dramatiq_*` variables; the bare unit of work writes the same rows with "
        "plain psycopg, one transaction per account, same processes × threads.", "",
        *table(("path", "messages", "msgs/s", "drain s", "start-up s", "enqueue msgs/s", "peak RSS (MB)",
                "CPU ms per message: Python / PostgreSQL / Redis", "foreign CPU (cores)"),
               (_throughput_row(part) for part in parts)),
        "CPU is that of this run's processes over the timed window (for the queued paths it includes worker "
        "start-up, about a second of imports per process); the machine has 2 cores to share between them.", "",
    ]
    ratios = [(name, f"**{value:.2f}**") for name, value in (
        ("onboarding ÷ no-op actor", results.onboarding_vs_noop),
        ("onboarding ÷ bare unit of work", results.onboarding_vs_bare)) if value is not None]
    return lines + table(("ratio (same run)", "value"), ratios)


def latency_section(results: Results) -> list[str]:
    lat = results.latency
    if lat is None:
        return []
    rows = [(f"{lat.rate:g}", _n(lat.sent), f"{lat.p('total', 0.5):.0f}", f"**{lat.p('total', 0.99):.0f}**",
             f"{lat.p('pickup', 0.5):.0f} / {lat.p('pickup', 0.99):.0f}",
             f"{lat.p('rest', 0.5):.0f} / {lat.p('rest', 0.99):.0f}", f"{lat.usage.foreign_cores:.2f}")]
    return [
        "## 3. Enqueue → event latency", "",
        f"Idle `billing worker` and `billing relay` (relay poll interval {lat.relay_interval_seconds:g} s); one fresh "
        "account per message (one-period catch-up) sent at a steady rate; latency = send → the `invoice.created` "
        "event read from the Redis Stream (`XREAD BLOCK`). Split by the event's `time` (when the actor took the "
        "message): queue pickup, then processing + outbox relay.", "",
        *table(("msgs/s", "messages", "p50 ms", "p99 ms", "pickup p50 / p99 ms", "actor → stream p50 / p99 ms",
                "foreign CPU (cores)"), rows),
    ]


SIMULATE_HEADING = "## 4. `billing simulate`: cost follows the work, not the span"


def simulate_section(results: Results) -> list[str]:
    part = results.simulate
    if part is None:
        return []
    m = results.machine
    runs = [("one account, one monthly plan, 1 day", ", ".join(f"{v:.2f}" for v in part.one_day_seconds),
             f"{statistics.median(part.one_day_seconds):.2f}", 1),
            ("the same account for 5 years", ", ".join(f"{v:.2f}" for v in part.five_years_seconds),
             f"{statistics.median(part.five_years_seconds):.2f}", part.five_years_invoices)]
    seconds = part.random_seconds
    rows = [(len(seconds), _n(part.random_simulated_days), f"**{part.random_total_seconds:.1f}**",
             f"{statistics.median(seconds):.2f}", f"{max(seconds):.2f}", _n(part.random_invoices),
             _n(part.random_rejections))]
    verdicts = [(t.name, t.figure, t.goal, f"**{t.verdict}**", t.margin) for t in simulate_targets(part)]
    checks = part.checks.items
    passed = sum(check.ok for check in checks)
    return [
        SIMULATE_HEADING, "",
        f"Measured by `{results.command}` on {m['date']} (checkout {m['commit']}). Each run is `billing simulate "
        "FILE` in its own process, as the acceptance runner calls it, so every figure includes the process's "
        "start-up (interpreter and imports, 1.5 to 2 seconds here; the schema is replayed from "
        "`models/migrations/sqlite_schema.sql`, not migrated). The clock jumps to the next hour at which something can "
        "happen (`jobs/wakeups.py`); `billing simulate --hourly` is the hour-by-hour reference that "
        "`tests/scenarios/test_simulate_jumps.py` compares it with.", "",
        *table(("scenario", "wall s (3 runs, alternating)", "median s", "invoices"), runs),
        f"Forty random scenarios (seed {results_seed()}, spans of 2 to 5 years, 1 to 4 accounts in zones from "
        "+14 to −12, every plan kind and balance kind, invalid messages among them), one after the other:", "",
        *table(("scenarios", "simulated days", "total wall s", "median s", "slowest s", "invoices", "rejections"),
               rows),
        *table(("target", "measured", "goal", "verdict", "margin"), verdicts),
        f"Checks of this part: {passed}/{len(checks)} passed ({'; '.join(check.name for check in checks)}).", "",
    ]


def results_seed() -> int:
    from tests.bench.simulate import RANDOM_SEED

    return RANDOM_SEED


def checks_section(results: Results) -> list[str]:
    """One line per part; a failed check is shown whole (``--json`` has every check with its values)."""
    checks = results.checks()
    failed = [c for c in checks if not c.ok]
    head = f"{len(checks)} checks, **{len(failed)} failed**." if failed else f"All {len(checks)} checks passed."
    parts: dict[str, list[str]] = {}
    for check in checks:
        parts.setdefault(check.part, []).append(check.name)
    rows = [(part, f"{sum(c.ok for c in checks if c.part == part)}/{len(names)}", "; ".join(names))
            for part, names in parts.items()]
    lines = ["## Correctness checks", "", head, "", *table(("part", "passed", "what was checked"), rows)]
    if failed:
        lines += table(("part", "failed check", "expected", "actual"),
                       ((c.part, c.name, c.expected, c.actual) for c in failed))
    return lines


def render(results: Results) -> str:
    lines = [
        "# Benchmarks", "",
        f"Generated by `{results.command}` (`make bench` runs it with the defaults) on {results.machine['date']}, "
        "on this machine's "
        "PostgreSQL and Redis, in a throwaway database and Redis namespace. The machine is shared and noisy: "
        "ratios are taken within one run; *foreign CPU* is the CPU other tenants used meanwhile.", "",
        *machine_section(results), *settings_section(results), *targets_section(results),
        *bill_run_section(results), *onboarding_section(results), *latency_section(results),
        *simulate_section(results), *checks_section(results),
    ]
    return "\n".join(lines).rstrip() + "\n"


def write_simulate_section(results: Results, path: Path) -> None:
    """A run of the simulate part alone: replace its section in the existing report, keep the rest."""
    if not path.exists():
        write(results, path)
        return
    old = path.read_text(encoding="utf-8")
    section = "\n".join(simulate_section(results)).rstrip() + "\n\n"
    if SIMULATE_HEADING in old:
        head, rest = old.split(SIMULATE_HEADING, 1)
        following = min((i for i in (rest.find("\n## "), rest.find(NOTES_MARKER)) if i >= 0), default=len(rest))
        tail = rest[following:].lstrip("\n")
    else:
        anchor = next((a for a in ("## Correctness checks", NOTES_MARKER) if a in old), None)
        head, tail = (old.split(anchor, 1)[0], anchor + old.split(anchor, 1)[1]) if anchor else (old, "")
    path.write_text(head + section + tail, encoding="utf-8")


def write(results: Results, path: Path) -> None:
    kept = ""
    if path.exists():
        old = path.read_text(encoding="utf-8")
        if NOTES_MARKER in old:
            kept = old.split(NOTES_MARKER, 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(results) + "\n" + NOTES_MARKER + (kept or "\n"), encoding="utf-8")
