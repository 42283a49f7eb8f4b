"""The producer registry: file + environment, the development default, and no leaked secrets."""

from __future__ import annotations

import json
import stat
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from jobs.producers import (
    LOCAL_KEY_FILE,
    PRODUCERS_ENV,
    SIMULATION_PRODUCER,
    SIMULATION_SECRET,
    ProducerLimits,
    ProducerRegistry,
    RegistryError,
    load_registry,
    registry_from_mapping,
)
from jobs.routes import MESSAGE_TYPES
from models.billing.balance import BALANCE_KINDS as BALANCE_LINE_KINDS
from worker.settings import Settings

SECRET = "crm-secret-0123456789abcdef"


def crm(**fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "keys": [{"id": "crm-2026", "secret": SECRET, "not_after": "2027-01-31"}],
        "types": ["balance_line.create"],
        "kinds": ["credit", "gift"],
        "limits": {"per_line": "50.00", "per_account_day": "100", "approval_above": "20.00", "rate_per_minute": 60},
    }
    spec.update(fields)
    return spec


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test runs in its own directory, without the producers variable."""
    monkeypatch.delenv(PRODUCERS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, producers: dict[str, Any]) -> Settings:
    path.write_text(json.dumps({"producers": producers}), encoding="utf-8")
    return Settings(producers_file=path)


def test_a_file_configures_producers(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path / "producers.json", {"crm": crm()}))
    producer = registry.get("crm")
    assert producer is not None and registry.get("nobody") is None
    key = producer.key("crm-2026")
    assert key is not None and key.secret_bytes() == SECRET.encode() and key.not_after == date(2027, 1, 31)
    assert producer.may_send("balance_line.create") and not producer.may_send("bill_run.trigger")
    assert producer.may_create("gift") and not producer.may_create("adjustment")
    assert producer.limits.rate_per_minute == 60
    assert not (tmp_path / LOCAL_KEY_FILE).exists()


def test_the_environment_is_merged_on_top_producer_by_producer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = write(tmp_path / "producers.json", {"crm": crm(), "support": crm(types=["balance_line.reverse"])})
    override = {"crm": crm(types=["account.onboard"]), "backend": crm(kinds=["discount"])}
    monkeypatch.setenv(PRODUCERS_ENV, json.dumps({"producers": override}))
    registry = load_registry(settings)
    assert sorted(registry.producers) == ["backend", "crm", "support"]
    crm_producer = registry.get("crm")
    assert crm_producer is not None and crm_producer.types == ["account.onboard"]


def test_the_environment_alone_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PRODUCERS_ENV, json.dumps({"producers": {"crm": crm()}}))
    assert list(load_registry(Settings(producers_file=None)).producers) == ["crm"]


def test_kinds_default_to_all_five_and_limits_to_none() -> None:
    registry = registry_from_mapping({"crm": {"keys": [{"id": "k", "secret": SECRET}], "types": []}})
    producer = registry.get("crm")
    assert producer is not None
    assert producer.kinds == list(BALANCE_LINE_KINDS) == ["credit", "gift", "referral", "discount", "adjustment"]
    assert producer.limits == ProducerLimits()


def test_nothing_configured_gives_no_producer_unless_the_try_out_asks(isolated: Path) -> None:
    assert load_registry(Settings(producers_file=None)).producers == {}
    assert not (isolated / ".billing" / "local-producer.key").exists()


def test_nothing_configured_gives_the_local_development_producer_under_billing_run(isolated: Path) -> None:
    registry = load_registry(Settings(producers_file=None, local_producer=True))
    local = registry.get("local")
    assert list(registry.producers) == ["local"] and local is not None
    assert local.types == list(MESSAGE_TYPES) and local.kinds == list(BALANCE_LINE_KINDS)
    assert local.limits == ProducerLimits()
    key_file = isolated / ".billing" / "local-producer.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()
    assert len(secret) == 64 and int(secret, 16) >= 0
    key = local.key("local-1")
    assert key is not None and key.secret_bytes() == secret.encode()
    again = load_registry(Settings(producers_file=None), allow_local=True).get("local")
    assert again is not None and again.keys[0].secret_bytes() == secret.encode()


def test_an_empty_configuration_also_gives_the_development_producer(tmp_path: Path) -> None:
    assert load_registry(write(tmp_path / "p.json", {})).producers == {}
    assert list(load_registry(write(tmp_path / "p.json", {}), allow_local=True).producers) == ["local"]


def test_the_simulation_producer_is_fixed_and_documented() -> None:
    assert SIMULATION_PRODUCER.name == "simulation"
    assert [key.id for key in SIMULATION_PRODUCER.keys] == ["sim-1"]
    assert SIMULATION_PRODUCER.keys[0].secret_bytes() == SIMULATION_SECRET.encode()
    assert SIMULATION_PRODUCER.types == list(MESSAGE_TYPES)
    assert SIMULATION_PRODUCER.kinds == list(BALANCE_LINE_KINDS)
    assert SIMULATION_PRODUCER.limits == ProducerLimits()


def test_registry_from_mapping_takes_either_shape() -> None:
    bare = registry_from_mapping({"crm": crm()})
    wrapped = registry_from_mapping({"producers": {"crm": crm()}})
    assert bare == wrapped and isinstance(bare, ProducerRegistry)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (crm(types=["account.delete"]), "unknown message type(s) ['account.delete']"),
        (crm(kinds=["bonus"]), "unknown balance-line kind(s) ['bonus']"),
        (crm(keys=[]), "crm.keys"),
        (crm(keys=[{"id": "k", "secret": "short"}]), "must be at least 16 characters"),
        (crm(keys=[{"id": "k", "secret": SECRET}, {"id": "k", "secret": SECRET}]), "key ids must be unique"),
        (crm(limits={"per_line": 50}), "crm.limits.per_line"),
        (crm(limits={"per_line": "-5"}), "crm.limits.per_line"),
        (crm(limits={"rate_per_minute": 0}), "crm.limits.rate_per_minute"),
        (crm(colour="blue"), "crm.colour"),
        (crm(name="other"), "is named 'other' inside"),
    ],
)
def test_bad_configuration_is_refused_without_echoing_secrets(
    spec: dict[str, Any], words: str, tmp_path: Path
) -> None:
    with pytest.raises(RegistryError) as caught:
        load_registry(write(tmp_path / "producers.json", {"crm": spec}))
    assert words in str(caught.value)
    assert SECRET not in str(caught.value) and "short" not in str(caught.value).replace("too short", "")


@pytest.mark.parametrize(
    ("content", "words"),
    [("{not json", "not valid JSON"), ("[]", "expected"), ('{"producers": []}', "expected")],
)
def test_unreadable_files_are_refused(content: str, words: str, tmp_path: Path) -> None:
    path = tmp_path / "producers.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RegistryError, match=words):
        load_registry(Settings(producers_file=path))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="producers file"):
        load_registry(Settings(producers_file=tmp_path / "absent.json"))


def test_bad_environment_json_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PRODUCERS_ENV, "{oops")
    with pytest.raises(RegistryError, match=PRODUCERS_ENV):
        load_registry(Settings(producers_file=None))


def test_secrets_do_not_show_in_reprs() -> None:
    assert SECRET not in repr(registry_from_mapping({"crm": crm()}))


@pytest.mark.parametrize(
    ("limits", "name", "currency", "minor"),
    [
        (ProducerLimits(per_line="50.00"), "per_line", "USD", 5000),
        (ProducerLimits(per_line="50"), "per_line", "JPY", 50),
        (ProducerLimits(per_line="0.5"), "per_line", "JPY", 0),  # rounded down: stricter, never looser
        (ProducerLimits(per_account_day="1.2345"), "per_account_day", "KWD", 1234),
        (ProducerLimits(), "approval_above", "USD", None),
    ],
)
def test_limits_in_minor_units(limits: ProducerLimits, name: str, currency: str, minor: int | None) -> None:
    assert limits.minor(name, currency) == minor


def test_a_key_expires_the_day_after_not_after() -> None:
    key = registry_from_mapping({"crm": crm()}).producers["crm"].keys[0]
    assert not key.expired(date(2027, 1, 31)) and key.expired(date(2027, 2, 1))


def test_billing_worker_refuses_to_start_without_producers(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    env = {key: value for key, value in os.environ.items() if not key.startswith("BILLING_")}
    env["PYTHONPATH"] = str(root)
    done = subprocess.run([sys.executable, "-m", "worker.cli", "worker"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "no producer is configured" in done.stderr and "Traceback" not in done.stderr
