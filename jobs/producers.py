"""The producer registry: who may send what, signed with which keys, within which limits.

Configuration, not code: a JSON file (``BILLING_PRODUCERS_FILE``) and, merged on top producer by
producer, the environment variable ``BILLING_PRODUCERS_JSON``, both shaped
``{"producers": {"crm": {"keys": [...], "types": [...], "kinds": [...], "limits": {...}}}}``.
With nothing configured, and only under ``billing run`` (``BILLING_LOCAL_PRODUCER``), a development
producer ``local`` is created whose secret lives in ``.billing/local-producer.key`` (mode 0600), so
a fresh checkout can sign without setup; anywhere else no producer means no message is accepted.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from jobs.routes import MESSAGE_TYPES
from jobs.settings import DEFAULT_HOME, JobSettings
from models.billing.balance import BALANCE_KINDS
from models.billing.money import minor_units

PRODUCERS_ENV = "BILLING_PRODUCERS_JSON"
LOCAL_PRODUCER = "local"
LOCAL_KEY_ID = "local-1"
LOCAL_KEY_FILE = DEFAULT_HOME / "local-producer.key"
"""Relative to the working directory, like the rest of the development defaults."""

SIMULATION_SECRET = "simulation-only-secret-not-for-production"  # noqa: S105 - public by design
"""Public on purpose: ``billing simulate`` signs its scenario messages with it, nothing else may."""

_MIN_SECRET_LENGTH = 16


class RegistryError(ValueError):
    """The producer configuration cannot be used; the message never contains a secret."""


class ProducerKey(BaseModel):
    """One signing key; several per producer let keys rotate without downtime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    secret: SecretStr
    not_after: date | None = None

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < _MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {_MIN_SECRET_LENGTH} characters")
        return value

    def secret_bytes(self) -> bytes:
        """The HMAC key: the secret's UTF-8 bytes, as configured."""
        return self.secret.get_secret_value().encode("utf-8")

    def expired(self, today: date) -> bool:
        """True once ``today`` is past ``not_after`` (the key still signs on that day)."""
        return self.not_after is not None and today > self.not_after


_LIMIT_PATTERN = r"^[0-9]{1,18}(\.[0-9]{1,6})?$"
_PERCENT_PATTERN = r"^(100(\.0{1,4})?|[0-9]{1,2}(\.[0-9]{1,4})?)$"


class ProducerLimits(BaseModel):
    """Abuse limits, amounts in major units of the line's currency (``None`` = no limit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_line: str | None = Field(default=None, pattern=_LIMIT_PATTERN)
    per_account_day: str | None = Field(default=None, pattern=_LIMIT_PATTERN)
    approval_above: str | None = Field(default=None, pattern=_LIMIT_PATTERN)
    rate_per_minute: int | None = Field(default=None, ge=1)
    max_percent: str | None = Field(default=None, pattern=_PERCENT_PATTERN)
    """Ceiling of a percent discount, and of the producer's percent discounts for one account over 24 hours."""
    approval_above_percent: str | None = Field(default=None, pattern=_PERCENT_PATTERN)
    """A percent discount above this waits for a second identity."""

    @property
    def caps_amounts(self) -> bool:
        """Whether any amount limit is configured (then percent discounts need their own ceiling)."""
        return any(value is not None for value in (self.per_line, self.per_account_day, self.approval_above))

    def minor(self, name: str, currency: str) -> int | None:
        """A limit (``per_line``, ``per_account_day``, ``approval_above``) in minor units.

        Rounded down: a limit of "0.5" JPY admits nothing rather than one yen.
        """
        text = getattr(self, name)
        if text is None:
            return None
        scaled = Decimal(text).scaleb(minor_units(currency))
        return int(scaled.to_integral_value(rounding=ROUND_FLOOR))


class Producer(BaseModel):
    """A system allowed to send messages, with its keys, permissions and limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$")
    keys: list[ProducerKey] = Field(min_length=1)
    types: list[str]
    kinds: list[str] = Field(default_factory=lambda: list(BALANCE_KINDS))
    limits: ProducerLimits = Field(default_factory=ProducerLimits)
    reverses_others: bool = False
    """Whether it may reverse lines other producers created (by default only its own)."""

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(MESSAGE_TYPES))
        if unknown:
            raise ValueError(f"unknown message type(s) {unknown}; known: {list(MESSAGE_TYPES)}")
        return value

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(BALANCE_KINDS))
        if unknown:
            raise ValueError(f"unknown balance-line kind(s) {unknown}; known: {list(BALANCE_KINDS)}")
        return value

    @field_validator("keys")
    @classmethod
    def _unique_key_ids(cls, value: list[ProducerKey]) -> list[ProducerKey]:
        ids = [key.id for key in value]
        if len(ids) != len(set(ids)):
            raise ValueError("key ids must be unique within a producer")
        return value

    def key(self, key_id: str) -> ProducerKey | None:
        """The key with this id, if the producer has one."""
        return next((key for key in self.keys if key.id == key_id), None)

    def may_send(self, message_type: str) -> bool:
        return message_type in self.types

    def may_create(self, kind: str) -> bool:
        return kind in self.kinds


class ProducerRegistry(BaseModel):
    """Every producer by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    producers: dict[str, Producer] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_match(self) -> ProducerRegistry:
        for name, producer in self.producers.items():
            if producer.name != name:
                raise ValueError(f"producer {name!r} is named {producer.name!r} inside")
        return self

    def get(self, name: str) -> Producer | None:
        return self.producers.get(name)


SIMULATION_PRODUCER = Producer(
    name="simulation",
    keys=[ProducerKey(id="sim-1", secret=SecretStr(SIMULATION_SECRET))],
    types=list(MESSAGE_TYPES),
)
"""Signs ``billing simulate``'s messages: all types and kinds, no limits, a public secret."""


def _describe(error: ValidationError) -> str:
    """Field paths and reasons only: pydantic's own text would echo inputs, secrets included."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in item["loc"]) or "registry"
        parts.append(f"{path}: {item['msg']}")
    return "; ".join(parts)


def _producer_specs(data: object, origin: str) -> dict[str, Any]:
    """The ``producers`` mapping of a configuration document, with each name filled in."""
    if not isinstance(data, Mapping) or not isinstance(data.get("producers", {}), Mapping):
        raise RegistryError(f'{origin}: expected {{"producers": {{"name": {{...}}}}}}')
    specs: dict[str, Any] = {}
    for name, spec in data.get("producers", {}).items():
        specs[name] = {"name": name, **spec} if isinstance(spec, Mapping) else spec
    return specs


def _build(specs: Mapping[str, Any], origin: str) -> ProducerRegistry:
    try:
        return ProducerRegistry.model_validate({"producers": dict(specs)})
    except ValidationError as error:
        raise RegistryError(f"{origin}: {_describe(error)}") from None


def registry_from_mapping(data: Mapping[str, Any]) -> ProducerRegistry:
    """A registry from ``{"producers": {...}}`` or from the bare ``{name: spec}`` mapping."""
    document = data if "producers" in data else {"producers": data}
    return _build(_producer_specs(document, "producers"), "producers")


def _read_json(text: str, origin: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RegistryError(f"{origin}: not valid JSON ({error.msg}, line {error.lineno})") from None


def _file_specs(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RegistryError(f"producers file {path}: {error.strerror or error}") from None
    return _producer_specs(_read_json(text, str(path)), str(path))


def _env_specs() -> dict[str, Any]:
    text = os.environ.get(PRODUCERS_ENV, "").strip()
    return _producer_specs(_read_json(text, PRODUCERS_ENV), PRODUCERS_ENV) if text else {}


def local_secret(path: Path = LOCAL_KEY_FILE) -> str:
    """The development producer's secret, created (``token_hex(32)``, mode 0600) if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text(encoding="utf-8").strip()
        if len(secret) < _MIN_SECRET_LENGTH:
            raise RegistryError(f"{path} holds no usable secret; delete it to create a new one") from None
        return secret
    secret = secrets.token_hex(32)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret


def local_producer(secret: str) -> Producer:
    """The development default: every type and kind, no limits."""
    return Producer(
        name=LOCAL_PRODUCER,
        keys=[ProducerKey(id=LOCAL_KEY_ID, secret=SecretStr(secret))],
        types=list(MESSAGE_TYPES),
    )


NO_PRODUCERS = (
    "no producer is configured (set BILLING_PRODUCERS_FILE or BILLING_PRODUCERS_JSON): a worker without "
    "producers would refuse every message. For a local try-out, `billing run` creates a development producer."
)


def load_registry(settings: JobSettings, *, allow_local: bool | None = None) -> ProducerRegistry:
    """The file's producers, then ``BILLING_PRODUCERS_JSON``'s (a same-named producer is replaced).

    When neither configures any producer: the development producer ``local`` alone if
    ``allow_local`` (default: ``settings.local_producer``, which only ``billing run`` sets), else
    an empty registry, which accepts nothing (``billing worker`` refuses to start on one).
    """
    specs = {**_file_specs(settings.producers_file), **_env_specs()}
    if not specs:
        if settings.local_producer if allow_local is None else allow_local:
            return ProducerRegistry(producers={LOCAL_PRODUCER: local_producer(local_secret())})
        return ProducerRegistry(producers={})
    return _build(specs, "producer configuration")
