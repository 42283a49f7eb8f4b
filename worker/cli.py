"""The `billing` command: run the stack, send messages, inspect and operate it.

Every subcommand imports what it needs only when it runs, so a command starts without loading
the database, broker and actor code that other commands need.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

EXIT_BAD_INPUT = 2
MESSAGE_TYPES = ("account.onboard", "balance_line.create", "balance_line.reverse", "bill_run.trigger",
                 "subscription.add", "subscription.change", "subscription.pause", "subscription.resume",
                 "subscription.cancel", "account.update")
"""What ``billing enqueue`` sends: ``jobs.routes.MESSAGE_TYPES``, spelled out (the CLI starts without jobs)."""


def _cmd_preview(args: argparse.Namespace) -> int:
    from jobs import account_preview
    from jobs.clock import clock_for
    from jobs.preview import PreviewError, preview_file
    from worker.commands import context
    from worker.settings import get_settings

    settings = get_settings()
    as_of = date.fromisoformat(args.as_of) if args.as_of else None
    if (args.file is None) == (args.account is None):
        print("billing preview: give an onboarding FILE, or --account ID [--change FILE]", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.account is not None:
            change = account_preview.read_change(Path(args.change)) if args.change else None
            document = account_preview.preview_account(context(), args.account, change, as_of)
        else:
            document = preview_file(Path(args.file), as_of, settings,
                                    clock_for(settings.clock_start, settings.clock_started_at))
    except (PreviewError, account_preview.PreviewError) as exc:
        print(f"billing preview: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(document, indent=2))
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from worker.simulate import simulate_file

    gc.freeze()  # what is loaded stays loaded: the run's collections need not walk it again
    gc.enable()
    print(json.dumps(simulate_file(Path(args.scenario), hourly=args.hourly), indent=2))
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from models.migrations.runner import migrate
    from worker.settings import get_settings

    migrate(get_settings().database_url)
    print("database migrated to the latest revision")
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from jobs.producers import NO_PRODUCERS, load_registry
    from worker.processes import run_worker
    from worker.settings import get_settings

    if not load_registry(get_settings()).producers:
        print(f"billing worker: {NO_PRODUCERS}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return run_worker(processes=args.processes, threads=args.threads, queues=args.queues)


def _cmd_relay(args: argparse.Namespace) -> int:
    from worker.processes import run_relay

    return run_relay()


def _cmd_scheduler(args: argparse.Namespace) -> int:
    from worker.scheduler import run_scheduler

    return run_scheduler(once=args.once)


def _cmd_run(args: argparse.Namespace) -> int:
    from worker.processes import run_stack

    return run_stack()


def _cmd_enqueue(args: argparse.Namespace) -> int:
    from worker.commands.sending import enqueue_file

    return enqueue_file(args.type, Path(args.file))


def _cmd_bill_run(args: argparse.Namespace) -> int:
    from worker.commands.sending import bill_run

    return bill_run(args.date, wait=args.wait, timeout=args.timeout)


def _cmd_status(args: argparse.Namespace) -> int:
    from worker.commands.status import status

    return status(as_json=args.json)


def _cmd_health(args: argparse.Namespace) -> int:
    from worker.commands.status import health

    return health()


def _cmd_dlq(args: argparse.Namespace) -> int:
    from worker.commands import dlq

    if args.action == "show":
        return dlq.dlq_show(args.id)
    if args.action == "replay":
        return dlq.dlq_replay(args.id)
    return dlq.dlq_list(code=args.code, limit=args.limit)


def _cmd_webhooks(args: argparse.Namespace) -> int:
    from worker.commands import webhooks

    if args.action == "show":
        return webhooks.webhooks_show(args.id)
    if args.action == "replay":
        return webhooks.webhooks_replay(args.id)
    return webhooks.webhooks_list(endpoint=args.endpoint, status=args.status, limit=args.limit)


def _cmd_invoices(args: argparse.Namespace) -> int:
    from worker.commands.invoices import print_invoices

    return print_invoices(args.account, args.limit, as_json=args.json)


def _cmd_audit(args: argparse.Namespace) -> int:
    from worker.commands.audit import audit

    return audit(args.account, as_csv=args.csv)


def _cmd_decide(args: argparse.Namespace) -> int:
    from models.billing.approvals import Decision
    from worker.commands.audit import approve_or_decline, approve_or_decline_reversal

    decision = Decision.APPROVED if args.command == "approve" else Decision.DECLINED
    if args.reversal is not None:
        return approve_or_decline_reversal(args.reversal, decision=decision, identity=args.identity,
                                           reason=args.reason)
    return approve_or_decline(args.line, decision=decision, identity=args.identity, reason=args.reason)


def _cmd_schema(args: argparse.Namespace) -> int:
    from worker.body_schemas import print_schema

    return print_schema(args.type)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="billing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    add("run", _cmd_run, "migrate, then run worker, relay and scheduler together (Ctrl-C stops)")
    sub = add("worker", _cmd_worker, "run dramatiq worker processes for every queue")
    sub.add_argument("--processes", type=int, default=2)
    sub.add_argument("--threads", type=int, default=8)
    sub.add_argument("--queues", nargs="*", default=None)
    add("relay", _cmd_relay, "publish outbox events to the event sink and deliver webhooks")
    sub = add("scheduler", _cmd_scheduler, "trigger the bill run every hour and sweep parked messages")
    sub.add_argument("--once", action="store_true", help="one tick, then exit")
    sub = add("bill-run", _cmd_bill_run, "enqueue a bill run now (for cron or Kubernetes CronJob)")
    sub.add_argument("--date", default=None, help="bill up to this date (default: each account's today)")
    sub.add_argument("--wait", action="store_true", help="show progress, exit when done; non-zero on failures")
    sub.add_argument("--timeout", type=float, default=3600.0)
    sub = add("enqueue", _cmd_enqueue, "sign and send messages: FILE holds one JSON body or JSON Lines")
    sub.add_argument("type", choices=MESSAGE_TYPES)
    sub.add_argument("file")
    sub = add("preview", _cmd_preview, "print the invoices an onboarding body would produce (no database), or "
              "an account's next invoice with a proposed change applied (reads the database, writes nothing)")
    sub.add_argument("file", nargs="?", default=None, help="an account.onboard body")
    sub.add_argument("--account", default=None, help="a stored account: preview its next invoice")
    sub.add_argument("--change", default=None, help='with --account: {"type": "subscription.change", "body": {...}}')
    sub.add_argument("--as-of", default=None, help="the account's local date (default: today there)")
    sub = add("schema", _cmd_schema, "print the JSON Schema of each message body, or of TYPE's")
    sub.add_argument("type", nargs="?", default=None, metavar="TYPE")
    sub = add("simulate", _cmd_simulate, "replay a scenario through the real actors on a test clock")
    sub.add_argument("scenario")
    sub.add_argument("--hourly", action="store_true",
                     help="tick every hour instead of jumping over idle ones (same result, slower)")
    add("migrate", _cmd_migrate, "upgrade the database to the latest schema")
    sub = add("status", _cmd_status, "last bill runs, queue depths, outbox lag, rejections")
    sub.add_argument("--json", action="store_true")
    add("health", _cmd_health, "exit 0 when the database and the broker (Redis or RabbitMQ) answer, 1 otherwise")
    sub = add("dlq", _cmd_dlq, "rejected and quarantined messages: list, show, replay")
    sub.add_argument("action", nargs="?", choices=["list", "show", "replay"], default="list")
    sub.add_argument("id", nargs="?", type=int)
    sub.add_argument("--code", default=None)
    sub.add_argument("--limit", type=int, default=50)
    sub = add("webhooks", _cmd_webhooks, "webhook deliveries: the dead-letter list, show one, replay one")
    sub.add_argument("action", nargs="?", choices=["list", "show", "replay"], default="list")
    sub.add_argument("id", nargs="?", type=int)
    sub.add_argument("--endpoint", default=None, help="one configured endpoint's deliveries")
    sub.add_argument("--status", default="dead", choices=["all", "pending", "delivered", "dead"],
                     help="which deliveries to list (default: the dead letters)")
    sub.add_argument("--limit", type=int, default=50)
    sub = add("invoices", _cmd_invoices, "the latest invoices with their lines, read from the database")
    sub.add_argument("--account", default=None)
    sub.add_argument("--limit", type=int, default=20)
    sub.add_argument("--json", action="store_true")
    sub = add("audit", _cmd_audit, "every balance line of an account and what happened to it")
    sub.add_argument("--account", required=True)
    sub.add_argument("--csv", action="store_true")
    effect = {"approve": "; an approved reversal takes what is left of the line now, at most what it asked",
              "decline": "; a declined one changes nothing"}
    for name in ("approve", "decline"):
        sub = add(name, _cmd_decide, f"{name} a balance line waiting for approval (LINE: its line_id), or a reversal "
                  f"waiting for approval (--reversal REVERSAL_ID: the reversal_id of its balance_line.reverse)"
                  f"{effect[name]}")
        target = sub.add_mutually_exclusive_group(required=True)
        target.add_argument("line", nargs="?", default=None, metavar="LINE", help="the line_id of a held line")
        target.add_argument("--reversal", default=None, metavar="REVERSAL_ID",
                            help="the reversal_id of a held reversal (billing audit lists them)")
        sub.add_argument("--as", dest="identity", required=True,
                         help="who decides: a configured approver (BILLING_APPROVERS), not the author")
        sub.add_argument("--reason", default="")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "simulate":  # a short process whose start is imports: no collection until they are done
        gc.disable()
    from worker.logging import configure_logging
    from worker.settings import get_settings

    settings = get_settings()
    if args.command in {"preview", "simulate", "schema"}:  # their stdout is a JSON document: keep logs quiet
        settings = settings.model_copy(update={"log_level": "ERROR"})
    if args.command == "run" and "BILLING_LOG_FORMAT" not in os.environ:  # a person watches it: one format
        settings = settings.model_copy(update={"log_format": "console"})
    configure_logging(settings)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
