"""`billing schema [TYPE]` prints the pydantic models' JSON Schemas; an unknown type exits 2 naming the known ones."""

from __future__ import annotations

import json

import pytest

from jobs.routes import MESSAGE_TYPES
from jobs.schemas import BODY_MODELS
from worker.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["schema", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_without_a_type_every_message_type_has_its_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)

    schemas = json.loads(out)
    assert code == 0
    assert list(schemas) == list(MESSAGE_TYPES)
    for message_type, schema in schemas.items():
        generated = BODY_MODELS[message_type].model_json_schema()
        assert {key: value for key, value in schema.items() if key not in {"$schema", "$id"}} == generated
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_one_type_prints_its_schema_alone(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "account.onboard")

    schema = json.loads(out)
    assert code == 0
    assert schema["title"] == "OnboardAccount"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"account", "start_date", "subscriptions"}
    assert schema["properties"]["subscriptions"]["minItems"] == 1


def test_an_unknown_type_exits_2_and_names_the_known_types(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "invoice.create")

    assert code == 2
    assert out == ""
    assert "'invoice.create'" in err
    for message_type in MESSAGE_TYPES:
        assert message_type in err


def test_the_cli_offers_every_message_type_to_enqueue() -> None:
    from worker.cli import MESSAGE_TYPES as CLI_TYPES

    assert set(CLI_TYPES) == set(MESSAGE_TYPES)
