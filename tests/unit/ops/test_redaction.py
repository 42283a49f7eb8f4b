"""Canary values never reach a log line, whether logged by us (structlog) or by dramatiq (stdlib)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import structlog
from dramatiq import Message
from hypothesis import example, given, settings
from hypothesis import strategies as st

from jobs.redaction import REDACTED, SENSITIVE_KEYS, redact_payload
from worker.logging import configure_logging, redact
from worker.settings import Settings

CANARY_SECRET = "whsec-canary-7f3a9q"
CANARY_EMAIL = "jane.canary@example.org"
CANARY_NAME = "Jane Canaryfield"
CANARY_HEX = "9f3c" * 16  # 64 hex digits: what an HMAC-SHA256 signature looks like
CANARY_HEX_IN_TEXT = "a1b2" * 16
CANARIES = (CANARY_SECRET, CANARY_EMAIL, CANARY_NAME, "Canaryfield", CANARY_HEX, CANARY_HEX_IN_TEXT)


def envelope() -> dict[str, Any]:
    """A signed onboarding envelope with personal data and secrets at several depths."""
    return {
        "type": "account.onboard",
        "id": "msg-1",
        "producer": "crm",
        "key_id": "k-2026",
        "signature": CANARY_HEX,
        "body": {
            "account": {"id": "acc-42", "name": CANARY_NAME, "currency": "EUR"},
            "balance_lines": [
                {"line_id": "bl-1", "amount": "10.00", "label": f"gift for {CANARY_NAME}", "author": "ops"},
                ("contact", {"text": f"write to {CANARY_EMAIL}", "trace": f"v1={CANARY_HEX_IN_TEXT}"}),
            ],
            "producer_config": {"Secret": CANARY_SECRET, "E-Mail": CANARY_EMAIL},
        },
    }


LogLines = Callable[[], tuple[str, list[dict[str, Any]]]]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def json_logs(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> LogLines:
    """Configure JSON logging; the returned function gives stderr so far, raw and parsed per line."""
    configure_logging(Settings(log_format="json", log_level="DEBUG"))

    def read() -> tuple[str, list[dict[str, Any]]]:
        err = capsys.readouterr().err
        return err, [json.loads(line) for line in err.splitlines()]

    return read


def assert_no_canary(text: str) -> None:
    leaked = [canary for canary in CANARIES if canary in text]
    assert not leaked, f"leaked {leaked} in {text!r}"


def test_structlog_line_hides_canaries_and_keeps_ids(json_logs: LogLines) -> None:
    structlog.get_logger("jobs.onboarding").error("onboarding_failed", payload=envelope(), email=CANARY_EMAIL)

    raw, lines = json_logs()

    assert_no_canary(raw)
    (line,) = lines
    assert line["event"] == "onboarding_failed"
    assert line["email"] == REDACTED
    assert line["payload"]["key_id"] == "k-2026"
    assert line["payload"]["body"]["account"] == {"id": "acc-42", "name": REDACTED, "currency": "EUR"}
    assert line["payload"]["body"]["balance_lines"][0]["amount"] == "10.00"


def test_dramatiq_stdlib_error_line_is_json_redacted_and_carries_context(json_logs: LogLines) -> None:
    structlog.contextvars.bind_contextvars(message_id="msg-1")

    logging.getLogger("dramatiq.worker").error(
        "Failed to process message %r with unhandled exception.", envelope()
    )

    raw, lines = json_logs()
    assert_no_canary(raw)
    (line,) = lines
    assert line["logger"] == "dramatiq.worker"
    assert line["level"] == "error"
    assert line["message_id"] == "msg-1"
    assert "'acc-42'" in line["event"]


def test_real_dramatiq_message_repr_is_redacted(json_logs: LogLines) -> None:
    # dramatiq renders a failing message as actor(args, kwargs) inside its error text
    message: Message[None] = Message(
        queue_name="onboarding",
        actor_name="onboarding.onboard_account",
        args=(envelope(),),
        kwargs={"email": CANARY_EMAIL, "name": CANARY_NAME},
        options={},
    )

    logging.getLogger("dramatiq.worker").error(
        "Failed to process message %s with unhandled exception.", message
    )

    raw, _ = json_logs()
    assert_no_canary(raw)
    assert "onboarding.onboard_account(" in raw


def test_tracebacks_are_redacted_on_both_paths(json_logs: LogLines) -> None:
    try:
        raise ValueError(f"bad address {CANARY_EMAIL} signed {CANARY_HEX}")
    except ValueError:
        structlog.get_logger("jobs").exception("handler_crashed")
        logging.getLogger("dramatiq.worker").exception("Consumer encountered an unexpected error.")

    raw, lines = json_logs()
    assert_no_canary(raw)
    assert [line["level"] for line in lines] == ["error", "error"]
    assert all(line["exception"][0]["exc_type"] == "ValueError" for line in lines)


def test_every_line_is_json_with_a_utc_timestamp(json_logs: LogLines) -> None:
    structlog.get_logger("worker").info("started", processes=2)
    logging.getLogger("sqlalchemy.engine").warning("pool %s overflow", "main")

    _, lines = json_logs()

    assert [line["event"] for line in lines] == ["started", "pool main overflow"]
    for line in lines:
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() == timedelta(0)


def test_log_level_filters_both_paths(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="json", log_level="warning"))

    structlog.get_logger("worker").info("quiet")
    logging.getLogger("dramatiq").info("quiet too")
    structlog.get_logger("worker").warning("loud")

    assert [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()] == ["loud"]


def test_console_format_hides_canaries(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="console", log_level="INFO"))

    structlog.get_logger("jobs").error("onboarding_failed", payload=envelope())
    logging.getLogger("dramatiq.worker").error("Failed to process message %r.", envelope())

    err = capsys.readouterr().err
    assert "onboarding_failed" in err
    assert_no_canary(err)


def test_configuring_twice_keeps_one_handler(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format="json"))
    configure_logging(Settings(log_format="json"))

    logging.getLogger("dramatiq").warning("once")

    assert len(capsys.readouterr().err.splitlines()) == 1


def test_unknown_log_level_is_refused(restore_logging: None) -> None:
    with pytest.raises(ValueError, match="BILLING_LOG_LEVEL"):
        configure_logging(Settings(log_level="LOUD"))


def test_redact_payload_keeps_shape_and_never_mutates() -> None:
    original = envelope()

    redacted = redact_payload(original)

    assert original == envelope()
    assert redacted["signature"] == REDACTED
    assert redacted["body"]["producer_config"] == {"Secret": REDACTED, "E-Mail": REDACTED}
    contact = redacted["body"]["balance_lines"][1]
    assert contact == ("contact", {"text": "write to [email]", "trace": f"v1={REDACTED}"})
    assert_no_canary(repr(redacted))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "postgresql+psycopg://postgres:s3cr3t@db:5432/billing",
            f"postgresql+psycopg://{REDACTED}@db:5432/billing",
        ),
        ("key_id=k1 actor_name=onboard", "key_id=k1 actor_name=onboard"),
        ("token='abc' api-key=xyz", f"token='{REDACTED}' api-key={REDACTED}"),
        ('{"first_name": "Ann", "id": 7}', f'{{"first_name": "{REDACTED}", "id": 7}}'),
        ("f" * 63, "f" * 63),  # too short for a signature: ids and hashes of other sizes stay
        (b"raw bytes from jane@example.com", "raw bytes from [email]"),
        (12.5, 12.5),
        (None, None),
    ],
)
def test_redact_payload_scalars(value: object, expected: object) -> None:
    assert redact_payload(value) == expected


def test_redact_processor_keeps_function_names_in_tracebacks() -> None:
    frames = [{"filename": "jobs/onboarding.py", "lineno": 3, "name": "onboard_account"}]
    event = {
        "event": "boom",
        "name": CANARY_NAME,
        "exception": [{"exc_value": CANARY_EMAIL, "frames": frames}],
    }

    redacted = redact(None, "error", event)

    assert redacted["name"] == REDACTED
    assert redacted["exception"] == [{"exc_value": "[email]", "frames": frames}]


def test_sensitive_keys_are_normalized() -> None:
    assert all(key == key.lower().replace("-", "_") for key in SENSITIVE_KEYS)


@pytest.mark.parametrize("filler", ["a" * 400_000, "a." * 200_000, "a@" * 200_000, "name:'" * 70_000,
                                    "0f" * 200_000, "x://:" * 80_000])
def test_redaction_of_a_huge_field_takes_bounded_time(filler: str) -> None:
    # Given a 400,000-character field shaped to make naive patterns backtrack
    import time

    started = time.perf_counter()
    # When it is redacted for a stored payload and for a log line
    stored = redact_payload({"body": {"label_free": filler, "note": filler}, "id": "m-1"})
    logged = redact_payload({"event": filler})
    # Then it is done at once (a guard, not a benchmark), cut to a bounded length, and still masked by key
    assert time.perf_counter() - started < 2
    assert len(stored["body"]["label_free"]) < 10_000 and stored["body"]["label_free"].endswith("[truncated]")
    assert stored["body"]["note"] == REDACTED and len(logged["event"]) < 10_000


def test_an_address_in_a_long_text_is_still_masked() -> None:
    assert redact_payload("x" * 100 + " write to jane.doe@example.com today") == "x" * 100 + " write to [email] today"


def test_a_nested_value_is_walked_only_to_a_bounded_depth() -> None:
    deep: Any = "jane@example.com"
    for _ in range(5000):
        deep = [deep]
    walked = redact_payload(deep)
    for _ in range(40):
        walked = walked[0]
    assert walked == "[nested too deep]"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["name", "key", "token", "=", ":", " ", "@", "example.org", "jane", "https://",
                                  "u:p@h", "Failing row contains ", "(", ")", "'", '"', "9f3c" * 4, "é", "\u200b"]),
                max_size=12).map("".join) | st.text(max_size=80))
@example("Failing row contains (7, Jane)")
@example("name=Jane")
@example("write to jane@example.org")
def test_the_short_cut_for_clean_text_agrees_with_every_pattern(text: str) -> None:
    """``scrub_text`` returns short text without ``@ : = (`` untouched: the patterns agree."""
    from jobs import redaction

    full = redaction.scrub_values(redaction._KEY_VALUE.sub(redaction._mask_pair, redaction.truncate(text)))
    assert redaction.scrub_text(text) == full
