"""Bytes the broker could not decode: recorded as quarantined, never left to stall the queue."""

from __future__ import annotations

import base64
import binascii

from jobs import rejections
from jobs.context import JobContext
from jobs.outcomes import RejectionCode


def record_undecodable(ctx: JobContext, raw_base64: str, error: str) -> None:
    """Store what the decoder could not read (its first 2 KiB, as text) with the decoder's reason."""
    try:
        raw = base64.b64decode(raw_base64, validate=True)
        preview = raw[:2048].decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        preview = "<not base64>"
    rejections.record(ctx, {"undecodable": preview}, code=RejectionCode.QUARANTINED,
                      reason=f"the payload could not be decoded: {error}", now=ctx.now())
