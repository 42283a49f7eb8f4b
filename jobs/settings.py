"""The settings of the billing rules and the per-message pipeline, read from ``BILLING_*`` variables.

The worker's own settings (``worker.settings.Settings``: URLs, broker tuning, ports, logging)
extend these; handlers see only what is declared here, through the context they are given.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.limits import DEFAULT_MAX_ENVELOPE_BYTES, DEFAULT_MAX_JSON_DEPTH

DEFAULT_HOME = Path(".billing")
"""Where the zero-configuration defaults keep their files (the SQLite database, an embedded Redis)."""


class JobSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", frozen=True, extra="ignore")

    event_source: str = Field(default="urn:billing-worker", description="CloudEvents `source`.")
    producers_file: Path | None = Field(
        default=None, description="JSON file of producers, their keys and permissions."
    )
    signature_tolerance_seconds: int = Field(default=300, ge=1)
    combine_invoices: bool = Field(default=True, description="Client default; an account's own value wins.")
    invoice_prefix: str = Field(default="INV", description="Invoice numbers read PREFIX-YYYY-NNNNNN.")
    max_catch_up_periods: int = Field(default=36, ge=1)
    unknown_account_grace_seconds: int = Field(default=3600, ge=0)
    max_deliveries: int = Field(default=5, ge=1, description="Deliveries before a message is quarantined.")
    bill_run_batch_size: int = Field(default=300, ge=1)
    max_envelope_bytes: int = Field(
        default=DEFAULT_MAX_ENVELOPE_BYTES, ge=1024,
        description="Larger messages are refused before anything parses, redacts or stores them whole.",
    )
    max_json_depth: int = Field(default=DEFAULT_MAX_JSON_DEPTH, ge=8, le=200,
                                description="Messages nested deeper are refused before they are parsed.")
    local_producer: bool = Field(
        default=False,
        description="With no producer configured, create the all-powerful development producer `local`. "
                    "Only `billing run` sets it (for itself and its children); any other deployment fails closed.",
    )
    approvers: str = Field(
        default="",
        description="Comma-separated identities that may approve or decline held balance lines; none: nobody.",
    )

    @property
    def approver_identities(self) -> tuple[str, ...]:
        """The configured approvers, as written (compared by their skeleton, see ``jobs.identities``)."""
        return tuple(name.strip() for name in self.approvers.split(",") if name.strip())
