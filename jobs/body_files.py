"""Message bodies from files: one JSON object (any layout) or JSON Lines, never a float."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class BodyFileError(ValueError):
    """A body file that cannot be read as JSON objects; the message names the line."""


class _FractionError(Exception):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _refuse(literal: str) -> Any:
    raise _FractionError(literal)


def _loads(text: str) -> Any:
    """``json.loads`` that refuses numbers with a fraction or exponent, NaN and Infinity."""
    return json.loads(text, parse_float=_refuse, parse_constant=_refuse)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|NaN|-?Infinity)')


def _fraction_line(text: str) -> int:
    """The 1-based line of the first non-integer number outside strings."""
    for match in _TOKEN.finditer(text):
        number = match.group(1)
        if number is not None and not number.lstrip("-").isdigit():
            return text.count("\n", 0, match.start()) + 1
    return 1


def _fraction_error(name: str, line: int, literal: str) -> BodyFileError:
    return BodyFileError(
        f"{name} line {line}: {literal} is a JSON number with a fraction; "
        'write amounts and percents as strings such as "30.00"'
    )


def _as_body(value: object, name: str, line: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BodyFileError(f"{name} line {line}: a body must be a JSON object, not {type(value).__name__}")
    return value


def _parse_line(text: str, name: str, line: int) -> dict[str, Any]:
    try:
        return _as_body(_loads(text), name, line)
    except _FractionError as found:
        raise _fraction_error(name, line, found.literal) from None
    except json.JSONDecodeError as error:
        raise BodyFileError(f"{name} line {line}: not valid JSON ({error.msg})") from None


def _parse_document(text: str, name: str, first_line: int) -> dict[str, Any]:
    try:
        return _as_body(_loads(text), name, first_line)
    except _FractionError as found:
        raise _fraction_error(name, first_line - 1 + _fraction_line(text), found.literal) from None
    except json.JSONDecodeError as error:
        line = first_line - 1 + error.lineno
        raise BodyFileError(f"{name} line {line}: not valid JSON ({error.msg})") from None


def _open(path: str | Path) -> contextlib.AbstractContextManager[IO[str]]:
    if str(path) == "-":
        return contextlib.nullcontext(sys.stdin)
    return Path(path).open(encoding="utf-8")


def read_bodies(path: str | Path) -> Iterator[dict[str, Any]]:
    """Bodies from a file holding one JSON object (any layout) or JSON Lines; ``-`` is stdin.

    JSON Lines are streamed. A number with a fraction is an error naming its line: money never
    enters as a float.
    """
    name = str(path)
    with _open(path) as handle:
        try:
            yield from _bodies(handle, name)
        except UnicodeDecodeError:
            raise BodyFileError(f"{name}: not UTF-8 text") from None


def _bodies(handle: IO[str], name: str) -> Iterator[dict[str, Any]]:
    numbered = ((number, line) for number, line in enumerate(handle, start=1) if line.strip())
    first = next(numbered, None)
    if first is None:
        raise BodyFileError(f"{name}: holds no message body")
    number, line = first
    try:
        value = _loads(line)
    except json.JSONDecodeError:  # not JSON Lines: one document spread over several lines
        yield _parse_document(line + handle.read(), name, number)
        return
    except _FractionError as found:
        raise _fraction_error(name, number, found.literal) from None
    yield _as_body(value, name, number)
    for number, line in numbered:
        yield _parse_line(line, name, number)
