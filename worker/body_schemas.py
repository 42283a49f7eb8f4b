"""``billing schema [TYPE]``: the JSON Schema of each message body, from the pydantic models.

The schemas are what ``model_json_schema()`` says about ``jobs.schemas``: field names, types,
required fields, lengths, enums and defaults. Rules the worker checks in code are not in them
(identifier characters, decimal-string syntax, known currencies and time zones, amount *or*
percent, a balance line in the account's currency): the worker's rejection reason names those.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from jobs.schemas import BODY_MODELS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
EXIT_UNKNOWN_TYPE = 2


def body_schema(message_type: str) -> dict[str, Any]:
    """The JSON Schema of one message type's body; ``KeyError`` for an unknown type."""
    schema = BODY_MODELS[message_type].model_json_schema()
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": f"billing:{message_type}", **schema}


def body_schemas() -> dict[str, dict[str, Any]]:
    """Every message type's body schema, by type, in ``jobs.schemas.BODY_MODELS`` order."""
    return {message_type: body_schema(message_type) for message_type in BODY_MODELS}


def print_schema(message_type: str | None) -> int:
    """Print one body schema, or all of them keyed by type; exit 2 naming the known types otherwise."""
    if message_type is None:
        document: dict[str, Any] = body_schemas()
    elif message_type in BODY_MODELS:
        document = body_schema(message_type)
    else:
        known = ", ".join(BODY_MODELS)
        print(f"billing schema: unknown message type {message_type!r}; known types: {known}", file=sys.stderr)
        return EXIT_UNKNOWN_TYPE
    print(json.dumps(document, indent=2, ensure_ascii=False))
    return 0
