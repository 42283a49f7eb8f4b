"""The project's one redaction policy: what never reaches a log line or a stored rejection.

``redact_payload`` (stored rejection payloads, dead-letter views) and the log processor of
``worker.logging`` share one walk, so a secret or a customer's name is hidden the same way
everywhere. Redaction is ours to do: structlog has none built in (hynek/structlog#152).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import re
import uuid
from collections.abc import Mapping
from typing import Any, Final

REDACTED: Final = "[redacted]"
EMAIL_MASK: Final = "[email]"

SENSITIVE_KEYS: Final[frozenset[str]] = frozenset(
    {
        # secrets
        "secret", "secrets", "client_secret", "signature", "password", "passwd", "token",
        "access_token", "refresh_token", "authorization", "cookie", "set_cookie", "api_key",
        "x_api_key", "key", "keys", "private_key", "secret_key", "signing_key", "hmac_key",
        # personal data: identity
        "name", "first_name", "last_name", "full_name", "given_name", "family_name", "display_name",
        "company", "company_name", "legal_name", "author", "date_of_birth", "birth_date",
        # personal data: contact and location
        "email", "e_mail", "email_address", "phone", "phone_number", "mobile", "address",
        "street", "address_line1", "address_line2", "postal_code", "postcode", "zip", "zip_code",
        "ip", "ip_address",
        # personal data: payment and tax
        "iban", "account_number", "card_number", "pan", "cvc", "cvv", "tax_id", "vat_id",
        "vat_number", "ssn",
        # free text written by people
        "label", "note", "notes", "comment", "comments",
    }
)  # fmt: skip
"""Keys (lowercased, ``-`` read as ``_``) whose values are never logged nor stored in a rejection payload.

Two families. Secrets (signatures, keys, tokens, credentials): a leak lets someone forge messages or
reach our systems. Personal data (a person's or company's name, contact details, payment details,
free-text labels and notes a human typed, the author's identity): logs and dead-letter views are kept
longer and read more widely than the database, so they must not spread it. ``key`` and ``name`` are
deliberately broad; ids (``key_id``, ``account_id``, ``actor_name``) stay visible. ``reason`` is not
listed: it carries our own rejection reasons (e-mails inside it are still masked).
"""

# Every pattern below runs in linear time on any text: each starts only at the start of a run (a
# lookbehind) and bounds its repetitions, so a long run without a match fails once, not once per
# position. Strings are also cut to ``TEXT_LIMIT`` characters before any pattern sees them.
TEXT_LIMIT: Final = 4096
"""Characters of one string kept in a redacted payload or log field; the rest is dropped, unread."""
EXCEPTION_TEXT_LIMIT: Final = 16384
"""Characters of a traceback kept in a log line (its end: the exception is the last line)."""
TRUNCATED: Final = "…[truncated]"

_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,31}://)[^/@\s:]{0,256}:[^/@\s]{0,256}@", re.IGNORECASE
)
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[^\W\d_]{2,24}")
_HEX_SECRET_LENGTH: Final = 64
_HEX_SECRET = re.compile(rf"(?<![0-9A-Fa-f])[0-9A-Fa-f]{{{_HEX_SECRET_LENGTH},}}(?![0-9A-Fa-f])")
# PostgreSQL's NOT NULL and CHECK violations quote the whole row, names included, in their DETAIL.
_FAILING_ROW = re.compile(r"(Failing row contains )\((?:[^()]|\([^()]*\))*\)")
_KEY_ALTERNATION = "|".join(key.replace("_", "[-_]") for key in sorted(SENSITIVE_KEYS, key=len, reverse=True))
# `'name': 'Jane'`, `"email": "..."`, `name='Jane'`: sensitive pairs inside reprs and JSON text, such as
# the message repr dramatiq puts in its error lines. A value that opens a container is left to the
# inner keys.
_KEY_VALUE = re.compile(
    rf"""(?P<key>(?P<q>["']?)(?<![\w-])(?:{_KEY_ALTERNATION})(?P=q))(?P<sep>\s*[:=]\s*)"""
    r"""(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|(?![\[{(])[^\s,;&)\]}]+)""",
    re.IGNORECASE,
)
_PLAIN_SCALARS: Final = (bool, int, float, decimal.Decimal, dt.date, dt.time, dt.timedelta, uuid.UUID)


def is_sensitive_key(key: object) -> bool:
    """Whether values under ``key`` are hidden (case-insensitive; ``E-Mail`` is ``e_mail``)."""
    return isinstance(key, str) and key.lower().replace("-", "_") in SENSITIVE_KEYS


def _mask_pair(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "'\"" else ""
    return f"{match['key']}{match['sep']}{quote}{REDACTED}{quote}"


def truncate(text: str, limit: int = TEXT_LIMIT, *, keep_end: bool = False) -> str:
    """``text`` cut to ``limit`` characters (its start, or its end), marked when something was dropped."""
    if len(text) <= limit:
        return text
    return TRUNCATED + text[-limit:] if keep_end else text[:limit] + TRUNCATED


_PATTERN_MARKS: Final = "@:=("
"""Every pattern needs one of these (an e-mail or credentials ``@``, a pair's ``:`` or ``=``, a
failing row's ``(``) or a hex run of ``_HEX_SECRET_LENGTH``: shorter text without them is clean."""


def scrub_text(text: str, limit: int = TEXT_LIMIT, *, keep_end: bool = False) -> str:
    """Mask what free text can hide: URL credentials, sensitive ``key: value`` pairs, e-mails, hex secrets.

    The text is cut to ``limit`` characters first, so the work is bounded whatever its length. A
    short text that no pattern could match (most log keys and values) is returned as it is.
    """
    if len(text) < _HEX_SECRET_LENGTH and not any(mark in text for mark in _PATTERN_MARKS):
        return text
    return scrub_values(_KEY_VALUE.sub(_mask_pair, truncate(text, limit, keep_end=keep_end)))


def scrub_values(text: str) -> str:
    """Mask the values that give themselves away wherever they stand: URL credentials, e-mails, hex secrets.

    For our own sentences (rejection reasons), whose ``field: reason`` shape would read as pairs.
    """
    text = _URL_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", text)
    text = _FAILING_ROW.sub(rf"\g<1>({REDACTED})", text)
    text = _EMAIL.sub(EMAIL_MASK, text)
    return _HEX_SECRET.sub(REDACTED, text)


def redact_payload(obj: Any) -> Any:
    """A redacted copy of ``obj``; the input is never changed.

    Dicts, lists, tuples and sets are walked (and come back as plain ``dict``, ``list``, ``tuple``,
    ``list``), values under sensitive keys become ``"[redacted]"``, strings (keys included) are
    scrubbed, bytes are decoded and scrubbed, numbers, dates and ids pass, and any other object
    becomes its scrubbed ``repr`` (which is what a log renderer would have printed).
    """
    return _walk(obj, by_key=True)


MAX_DEPTH: Final = 40
"""Containers nested deeper are replaced by a marker: the walk never recurses without bound."""
TOO_DEEP: Final = "[nested too deep]"


def _walk(obj: Any, *, by_key: bool, depth: int = 0) -> Any:
    if obj is None or isinstance(obj, (*_PLAIN_SCALARS, enum.Enum)):
        return obj
    if isinstance(obj, str):
        return scrub_text(obj) if by_key else scrub_text(obj, EXCEPTION_TEXT_LIMIT, keep_end=True)
    if isinstance(obj, (bytes, bytearray)):
        return scrub_text(bytes(obj[: TEXT_LIMIT * 4]).decode("utf-8", errors="backslashreplace"))
    if depth >= MAX_DEPTH:
        return TOO_DEEP
    inner = depth + 1
    if isinstance(obj, Mapping):
        return {
            _walk(key, by_key=by_key, depth=inner): (
                REDACTED if by_key and is_sensitive_key(key) else _walk(value, by_key=by_key, depth=inner)
            )
            for key, value in obj.items()
        }
    if isinstance(obj, tuple):
        return tuple(_walk(item, by_key=by_key, depth=inner) for item in obj)
    if isinstance(obj, (list, set, frozenset)):
        return [_walk(item, by_key=by_key, depth=inner) for item in obj]
    return scrub_text(_repr(obj))


def _repr(obj: object) -> str:
    try:
        return repr(obj)
    except Exception as error:  # a repr that fails (or recurses) must not break a log line
        return f"<{type(obj).__name__}: repr failed ({type(error).__name__})>"


def walk(obj: Any, *, by_key: bool) -> Any:
    """The walk behind ``redact_payload``; ``by_key=False`` scrubs text but hides no key's value."""
    return _walk(obj, by_key=by_key)
