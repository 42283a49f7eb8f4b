"""Bytes the broker could not decode: recorded as quarantined, never left to stall the queue."""

from __future__ import annotations

import base64
import binascii

import dramatiq

import worker.broker  # noqa: F401 - installs the broker before the actors below are declared
from jobs import rejections, runtime
from worker import clock


@dramatiq.actor(actor_name="quarantine.undecodable", queue_name="quarantine", max_retries=3)
def undecodable(raw_base64: str, error: str) -> None:
    try:
        raw = base64.b64decode(raw_base64, validate=True)
        preview = raw[:2048].decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        preview = "<not base64>"
    rejections.record(runtime.get().sessions, {"undecodable": preview}, code="quarantined",
                      reason=f"the payload could not be decoded: {error}", now=clock.current().now())
