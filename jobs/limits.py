"""Bounds on what a message may be before anything looks inside it: its size and its nesting.

A small body nested hundreds of levels deep makes every recursive walk (redaction, canonical
JSON, pydantic, ``json.dumps``) raise ``RecursionError``; a huge one makes every pattern and copy
slow. The decoder refuses both before parsing bytes; ``check_envelope`` does the same for an
envelope handed in as a Python value (a direct call, a replay), iteratively, so it cannot recurse.
"""

from __future__ import annotations

import re

from jobs.errors import InvalidMessage

DEFAULT_MAX_ENVELOPE_BYTES = 256 * 1024
DEFAULT_MAX_JSON_DEPTH = 20

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
"""A JSON string: two disjoint alternatives under one star, so it matches in linear time."""
_BRACKETS = re.compile(r"[^\[\]{}]+")


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether ``text`` (JSON) nests objects and lists more than ``limit`` levels deep.

    Nesting is never deeper than the number of opening brackets, so a text with few of them is
    answered by counting. Otherwise strings are removed first (a ``[`` inside one is not nesting),
    then only brackets are walked. Malformed text gets some answer: the JSON parser words its own
    error afterwards.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for char in _BRACKETS.sub("", _STRING.sub("", text)):
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth = max(0, depth - 1)
    return False


def value_depth(value: object, limit: int) -> int:
    """How deeply a decoded value nests dicts and lists (iterative; stops past ``limit``)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def value_size(value: object, limit: int) -> int:
    """A lower bound of the JSON size of a decoded value, counted iteratively up to ``limit + 1``."""
    size = 0
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, dict):
            size += 2
            for key, child in item.items():
                size += 1
                stack.extend((key, child))
        elif isinstance(item, list | tuple):
            size += 2 + len(item)
            stack.extend(item)
        else:
            size += 4
        if size > limit:
            return size
    return size


def check_envelope(raw: object, *, max_bytes: int, max_depth: int) -> None:
    """Refuse (``InvalidMessage``) an envelope nested deeper than ``max_depth`` or larger than ``max_bytes``."""
    depth = value_depth(raw, max_depth)
    if depth > max_depth:
        raise InvalidMessage("envelope", f"is nested more than {max_depth} levels deep; the limit is {max_depth}")
    size = value_size(raw, max_bytes)
    if size > max_bytes:
        raise InvalidMessage("envelope", f"is larger than the limit of {max_bytes} bytes")
