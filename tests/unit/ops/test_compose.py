"""docker-compose.yml agrees with the code: real `billing` subcommands, real settings, sound dependencies.

No Docker engine runs here, so the file is checked by reading it. The image's entrypoint is
`billing` (see Dockerfile), so an app service's `command:` is a subcommand with its options.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from worker.cli import build_parser
from worker.settings import Settings

yaml = pytest.importorskip("yaml", reason="PyYAML (a dev dependency) is needed to read docker-compose.yml")

ROOT = Path(__file__).resolve().parents[3]
APP_SERVICES = {"migrate", "worker", "relay", "scheduler"}
SECRETS_DIR = "/run/secrets/"

Service = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Service]:
    found: dict[str, Service] = compose["services"]
    return found


@pytest.fixture(scope="module")
def cli_parser() -> argparse.ArgumentParser:
    """``worker.cli.build_parser()``: the commands the image's entrypoint really accepts."""
    parser = build_parser()
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    actions = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    assert actions, "build_parser() has no subcommands"
    return {name for action in actions for name in action.choices}


def as_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def environment(service: Service) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(name): str(value) for name, value in env.items()}


def dockerfile_entrypoint() -> list[str]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    entrypoints = re.findall(r"^ENTRYPOINT\s+(.+)$", text, flags=re.MULTILINE)
    assert len(entrypoints) == 1, "the Dockerfile needs exactly one ENTRYPOINT (exec form)"
    entrypoint: list[str] = json.loads(entrypoints[0])
    return entrypoint


def test_app_services_share_one_image_whose_entrypoint_is_billing(services: dict[str, Service]) -> None:
    built = {name for name, service in services.items() if "build" in service}

    assert built == APP_SERVICES
    assert len({(str(services[name]["build"]), services[name].get("image")) for name in built}) == 1
    assert dockerfile_entrypoint() == ["billing"]


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_command_is_a_billing_subcommand_the_cli_accepts(
    name: str, services: dict[str, Service], cli_parser: argparse.ArgumentParser
) -> None:
    argv = as_argv(services[name]["command"])

    assert argv[0] in subcommands(cli_parser), f"{name}: `billing {argv[0]}` is not a subcommand"
    try:
        cli_parser.parse_args(argv)
    except SystemExit as refused:
        pytest.fail(f"{name}: `billing {shlex.join(argv)}` is refused by the CLI (exit {refused.code})")


def test_healthchecks_of_app_services_run_billing_subcommands(
    services: dict[str, Service], cli_parser: argparse.ArgumentParser
) -> None:
    known = subcommands(cli_parser)
    long_running = APP_SERVICES - {"migrate"}  # migrate runs once and exits: nothing to check on it
    assert long_running <= services.keys()
    for name in long_running:
        test = services[name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        argv = as_argv(test[1:]) if test[0] in ("CMD", "CMD-SHELL") else as_argv(test)
        if test[0] == "CMD-SHELL":
            argv = shlex.split(" ".join(argv))
        assert argv[0] == "billing", f"{name}: healthcheck should run the CLI, got {argv}"
        assert argv[1] in known, f"{name}: `billing {argv[1]}` is not a subcommand"


def test_every_billing_variable_is_a_settings_field(services: dict[str, Service]) -> None:
    fields = set(Settings.model_fields)
    variables = [(name, variable) for name, service in services.items() for variable in environment(service)
                 if variable.startswith("BILLING_")]
    assert len({name for name, _ in variables}) >= len(APP_SERVICES), "every app service is configured by BILLING_*"
    unknown = [f"{name}: {variable}" for name, variable in variables
               if variable.removeprefix("BILLING_").lower() not in fields]
    assert not unknown, f"not fields of worker.settings.Settings: {unknown}"


def test_app_services_are_configured_for_production(services: dict[str, Service]) -> None:
    for name in APP_SERVICES:
        env = environment(services[name])
        assert env["BILLING_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert env["BILLING_REDIS_URL"].startswith("redis://:") and "@redis:6379/" in env["BILLING_REDIS_URL"], name
        assert env["BILLING_LOG_FORMAT"] == "json", name
        assert int(env["BILLING_METRICS_PORT"]) > 0, name


def test_producers_file_is_the_operators_mounted_secret(
    compose: dict[str, Any], services: dict[str, Service]
) -> None:
    assert compose["secrets"]["producers"] == {"file": "./producers.json"}
    for name in APP_SERVICES:
        (secret,) = services[name]["secrets"]
        assert secret["source"] == "producers"
        assert environment(services[name])["BILLING_PRODUCERS_FILE"] == SECRETS_DIR + secret["target"]


def test_services_depended_on_as_healthy_have_healthchecks(services: dict[str, Service]) -> None:
    waits = [(name, dependency) for name, service in services.items()
             for dependency, rule in (service.get("depends_on") or {}).items()
             if isinstance(rule, dict) and rule.get("condition") == "service_healthy"]
    assert waits, "the app waits for its database and broker to be healthy"
    missing = [f"{name} waits for {dependency}" for name, dependency in waits
               if "healthcheck" not in services[dependency]]
    assert not missing, f"healthy-dependencies without a healthcheck: {missing}"


def test_startup_order(services: dict[str, Service]) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in APP_SERVICES - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["worker"]["healthcheck"]["test"][1:] == ["billing", "health"]


def test_worker_scales_out(services: dict[str, Service]) -> None:
    worker = services["worker"]

    assert "container_name" not in worker
    assert "ports" not in worker
    assert as_argv(worker["command"])[:1] == ["worker"]


def test_redis_is_durable_and_never_evicts(services: dict[str, Service]) -> None:
    redis = services["redis"]
    command = shlex.join(as_argv(redis["command"]))

    assert redis["image"].startswith("redis:7")
    for flag in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert flag in command
    assert as_argv(redis["healthcheck"]["test"])[-2:] == ["redis-cli", "ping"]


def test_postgres_keeps_its_data_in_a_named_volume(
    compose: dict[str, Any], services: dict[str, Service]
) -> None:
    postgres = services["postgres"]
    volume = postgres["volumes"][0].split(":")[0]

    assert postgres["image"].startswith("postgres:16")
    assert environment(postgres)["POSTGRES_DB"] == "billing"
    assert "POSTGRES_PASSWORD" in environment(postgres)
    assert "pg_isready" in as_argv(postgres["healthcheck"]["test"])
    assert volume in compose["volumes"]


def test_passwords_come_from_the_environment_with_no_default(compose: dict[str, Any],
                                                             services: dict[str, Service]) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    # every use of a password variable is the required form: compose stops with a message when it is unset
    uses = re.findall(r"\$\{(POSTGRES_PASSWORD|REDIS_PASSWORD)([^}]*)\}", text)
    assert {name for name, _ in uses} == {"POSTGRES_PASSWORD", "REDIS_PASSWORD"}
    assert all(rest.startswith(":?") and len(rest) > 2 for _, rest in uses), uses
    redis_command = as_argv(services["redis"]["command"])
    assert redis_command[redis_command.index("--requirepass") + 1] == "${REDIS_PASSWORD:?set REDIS_PASSWORD}"
    assert environment(services["redis"])["REDISCLI_AUTH"].startswith("${REDIS_PASSWORD:?")  # the healthcheck
    env = compose["x-billing-env"]
    assert "${POSTGRES_PASSWORD:?" in env["BILLING_DATABASE_URL"]
    assert env["BILLING_REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?") and env["BILLING_REDIS_URL"].endswith(
        "@redis:6379/0")


def test_rabbitmq_is_an_optional_durable_profile(compose: dict[str, Any], services: dict[str, Service]) -> None:
    rabbitmq = services["rabbitmq"]

    assert rabbitmq["profiles"] == ["rabbitmq"]  # `docker compose up` alone does not start it
    assert rabbitmq["image"].startswith("rabbitmq:")
    assert rabbitmq["volumes"][0].split(":")[0] in compose["volumes"]
    assert "rabbitmq-diagnostics" in as_argv(rabbitmq["healthcheck"]["test"])
    for name in APP_SERVICES:
        assert "BILLING_BROKER_URL" in environment(services[name])
