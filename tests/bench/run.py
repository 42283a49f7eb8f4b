"""``python -m tests.bench.run [--out FILE] [--scale S]``: the whole benchmark, one command.

Creates its own database and Redis namespace, runs every part against the real product
processes, writes the report, and exits 1 when a correctness check failed (wrong counts,
duplicates, failures), 2 when the harness could not finish; a missed performance target exits 0.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.bench.processes import ProcessFailed

EXIT_CHECK_FAILED = 1
EXIT_HARNESS_FAILED = 2


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"), help="markdown report")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure as JSON")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every size (accounts, messages, latency duration) by S")
    parser.add_argument("--accounts", default="10000,100000", help="bill-run sizes, comma-separated")
    parser.add_argument("--messages", type=int, default=20_000, help="onboarding messages")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--latency-rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process (billing worker's default)")
    parser.add_argument("--parts", default="bill-run,onboarding,latency,simulate",
                        help="which parts to run (comma-separated); `--parts simulate` alone rewrites only its "
                             "section of the report")
    parser.add_argument("--logs", type=Path, default=None, help="keep the processes' logs here")
    args = parser.parse_args(argv)
    args.accounts = [max(1, round(int(n) * args.scale)) for n in args.accounts.split(",") if n.strip()]
    args.messages = max(2, round(args.messages * args.scale))
    args.latency_seconds = max(1.0, args.latency_seconds * args.scale)
    args.parts = {part.strip() for part in args.parts.split(",")}
    return args


def worker_settings(ctx: Any) -> dict[str, Any]:
    env = ctx.worker_env
    prefetch = env.get("dramatiq_queue_prefetch") or f"dramatiq default (2 × threads = {2 * ctx.threads})"
    return {
        "processes": ctx.processes, "threads": ctx.threads, "dramatiq_queue_prefetch": prefetch,
        "dramatiq_worker_timeout (ms)": env.get("dramatiq_worker_timeout", "as billing worker sets it"),
        "bill_run_batch_size": ctx.settings.bill_run_batch_size,
        "relay_interval_seconds": ctx.settings.relay_interval_seconds,
        "log level / format": f"{ctx.settings.log_level} / {ctx.settings.log_format}",
    }


def run_parts(args: argparse.Namespace, ctx: Any, results: Any) -> None:
    from tests.bench.bill_run import run_bill_run
    from tests.bench.bodies import catch_up_body, expected_invoice
    from tests.bench.context import utc_today

    if "bill-run" in args.parts:
        for accounts in args.accounts:
            _say(f"bill run of {accounts:,} accounts")
            results.bill_runs.append(run_bill_run(ctx, accounts))
    today = utc_today()
    if "onboarding" in args.parts:
        from tests.bench.bare import run_bare
        from tests.bench.noop import run_noop
        from tests.bench.onboarding import run_onboarding

        expected = expected_invoice(catch_up_body("onb-0000000", today), today)
        if expected.lines != 3:
            raise RuntimeError(f"the catch-up body gives {expected.lines} lines on {today}, not 3")
        _say(f"onboarding: {args.messages:,} messages")
        results.onboarding = run_onboarding(ctx, args.messages, expected, today)
        _say("onboarding: no-op actor")
        results.noop = run_noop(ctx, args.messages, today)
        _say("onboarding: bare unit of work")
        results.bare = run_bare(ctx, args.messages, expected, today)
    if "latency" in args.parts:
        from tests.bench.latency import run_latency

        _say(f"latency: {args.latency_rate:g} msgs/s for {args.latency_seconds:g} s")
        results.latency = run_latency(ctx, args.latency_seconds, args.latency_rate, today)
    if "simulate" in args.parts:
        from tests.bench.simulate import RANDOM_SCENARIOS, run_simulate

        _say(f"simulate: five years vs one day, then {RANDOM_SCENARIOS} random multi-year scenarios")
        results.simulate = run_simulate()


def _say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def benchmark(args: argparse.Namespace, command: str, logs: Path) -> Any:
    from tests.bench.services import apply_env, throwaway_services

    with throwaway_services() as services:
        apply_env(services)
        from models.migrations.runner import migrate
        from tests.bench.context import make_context
        from tests.bench.machine import describe
        from tests.bench.results import Results

        migrate(services.sqlalchemy_url)
        ctx = make_context(services, logs, args.processes, args.threads)
        results = Results(command, describe(ctx.conninfo, ctx.redis), {},
                          services={"database": services.database, "namespace": services.namespace})
        run_parts(args, ctx, results)
        results.settings = worker_settings(ctx)
        return results


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = shlex.join(["python", "-m", "tests.bench.run", *argv])
    logs = args.logs or Path(tempfile.mkdtemp(prefix="billing-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    try:
        results = benchmark(args, command, logs)
    except (ProcessFailed, RuntimeError, OSError) as exc:
        print(f"bench: could not finish: {exc}\n(process logs kept in {logs})", file=sys.stderr)
        return EXIT_HARNESS_FAILED
    except Exception:  # anything else (a migration, the product's imports): still exit 2, not 1
        traceback.print_exc()
        print(f"bench: could not finish (process logs kept in {logs})", file=sys.stderr)
        return EXIT_HARNESS_FAILED
    from tests.bench import report

    if args.parts == {"simulate"}:
        report.write_simulate_section(results, args.out)
    else:
        report.write(results, args.out)
    if args.json:
        args.json.write_text(json.dumps(results.as_json(), indent=2, default=str), encoding="utf-8")
    for target in results.targets():
        _say(f"{target.verdict}  {target.name}: {target.figure} (goal {target.goal}; {target.margin})")
    failures = results.failures()
    for failure in failures:
        print(f"bench: check failed: {failure.part}: {failure.name}: expected {failure.expected!r}, "
              f"got {failure.actual!r}", file=sys.stderr)
    if failures:
        print(f"(process logs kept in {logs})", file=sys.stderr)
        return EXIT_CHECK_FAILED
    if args.logs is None:
        shutil.rmtree(logs, ignore_errors=True)
    _say(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
