"""A producer identity and one of its keys: what signs every envelope a client sends."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs.envelope import make_envelope
from jobs.producers import LOCAL_KEY_ID, LOCAL_PRODUCER, load_registry
from jobs.settings import JobSettings

PRODUCER_ENV = "BILLING_PRODUCER"
KEY_ID_ENV = "BILLING_PRODUCER_KEY_ID"
SECRET_ENV = "BILLING_PRODUCER_SECRET"  # noqa: S105 - the variable's name, not a secret


@dataclass(frozen=True)
class Signer:
    """A producer identity and one of its keys."""

    producer: str
    key_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def from_settings(cls, settings: JobSettings) -> Signer:
        """From ``BILLING_PRODUCER``, ``..._KEY_ID`` and ``..._SECRET``; else the local producer.

        The local development producer exists only when no producer is configured (see
        ``jobs.producers.load_registry``); otherwise the three variables are required.
        """
        values = {name: os.environ.get(name, "") for name in (PRODUCER_ENV, KEY_ID_ENV, SECRET_ENV)}
        if any(values.values()):
            missing = [name for name, value in values.items() if not value]
            if missing:
                raise ValueError(f"set {', '.join(missing)} as well: a producer needs all three")
            return cls(values[PRODUCER_ENV], values[KEY_ID_ENV], values[SECRET_ENV].encode("utf-8"))
        local = load_registry(settings, allow_local=True).get(LOCAL_PRODUCER)  # signing only; the worker decides
        key = local.key(LOCAL_KEY_ID) if local is not None else None
        if key is None:
            raise ValueError(
                f"producers are configured, so there is no local development producer: "
                f"set {PRODUCER_ENV}, {KEY_ID_ENV} and {SECRET_ENV}"
            )
        return cls(LOCAL_PRODUCER, key.id, key.secret_bytes())

    def envelope(
        self, message_type: str, body: dict[str, Any], *, now: datetime, message_id: str | None = None
    ) -> dict[str, Any]:
        """A signed envelope for ``body``."""
        return make_envelope(
            message_type,
            body,
            producer=self.producer,
            key_id=self.key_id,
            secret=self.secret,
            now=now,
            message_id=message_id,
        )
