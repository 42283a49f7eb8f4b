"""Canonical JSON: the one byte form a signature and a body hash are computed over.

Producer and worker must serialise the same value to the same bytes, whatever the key order or
whitespace on the wire: keys sorted, no spaces, UTF-8 as is. Floats are refused everywhere:
money is never a float, and two JSON libraries need not print the same float the same way.
"""

from __future__ import annotations

import hashlib
import json


class FloatInJsonError(ValueError):
    """A float (or NaN/infinity) inside a value that must be canonical; ``path`` says where."""

    def __init__(self, path: str, value: float) -> None:
        super().__init__(
            f"{path or 'value'}: {value!r} is a JSON number with a fraction; "
            'send amounts and percents as decimal strings such as "30.00"'
        )
        self.path = path
        self.value = value


def _refuse_floats(value: object, path: str) -> None:
    if isinstance(value, float):
        raise FloatInJsonError(path, value)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path or 'value'}: object keys must be strings, not {key!r}")
            _refuse_floats(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_floats(item, f"{path}.{index}" if path else str(index))


def _only_exact_values(value: object) -> bool:
    """Whether ``value`` holds no float and no key that is not a string: the walk without the paths
    ``_refuse_floats`` spells for its error, so a clean value (nearly all) costs one pass of type checks."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, float):
            return False
    return True


def canonical_json(obj: object) -> bytes:
    """Sorted keys, ``(",", ":")`` separators, UTF-8 without escapes; ``ValueError`` on floats."""
    if not _only_exact_values(obj):
        _refuse_floats(obj, "")
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def body_hash(body: object) -> str:
    """SHA-256 hex of the canonical JSON: equal bodies, equal hashes (idempotency conflicts)."""
    return hashlib.sha256(canonical_json(body)).hexdigest()
