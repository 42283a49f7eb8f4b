"""Invoice numbers on PostgreSQL: given when the relay finalises an invoice, gapless, and final.

The writer stores invoices unnumbered; the relay numbers them in a transaction of its own before
it publishes. A number once given is the one every copy of the event carries, even when the
publishing fails and is tried again; an invoice that never committed never consumes one (the
writer does not touch the counter at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from models.tables.invoice import Invoice
from models.tables.invoice_counter import InvoiceCounter
from models.tables.outbox import OutboxEvent
from tests.integration.bill_run_harness import Harness
from worker.outbox import MemoryPublisher

pytestmark = pytest.mark.integration


class RedisDown(MemoryPublisher):
    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        raise ConnectionError("Redis is down")


def body(account_id: str, lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "account": {"id": account_id, "name": "Acme", "currency": "USD", "timezone": "UTC"},
        "start_date": "2026-11-20", "bill_day": 20, "subscriptions": [{"plan": "pro", "amount": "30.00"}],
    }
    if lines is not None:
        document["balance_lines"] = lines
    return document


def numbers(engine: Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(  # type: ignore[misc]
            select(Invoice.account_id, Invoice.number).order_by(Invoice.id))]


def test_a_number_given_before_a_failed_publish_is_the_one_the_event_carries(clean_pg: Engine, pg_url: str) -> None:
    h = Harness(pg_url, datetime(2026, 12, 1, 9, tzinfo=UTC))
    try:
        h.publisher = RedisDown()
        with pytest.raises(ConnectionError):
            h.onboard(body("acme"))  # committed; numbered; the publish failed
        assert numbers(clean_pg) == [("acme", "INV-2026-000001")]
        with clean_pg.connect() as connection:
            assert connection.execute(select(OutboxEvent.sent_at)).scalar_one() is None  # to be sent again

        h.publisher = MemoryPublisher()
        assert h.relay() == 1
        assert h.onboard(body("zeta")) == "processed"
    finally:
        h.close()
    assert [event["data"]["number"] for event in h.publisher.events] == ["INV-2026-000001", "INV-2026-000002"]
    assert numbers(clean_pg) == [("acme", "INV-2026-000001"), ("zeta", "INV-2026-000002")]


def test_only_invoices_that_committed_consume_numbers(clean_pg: Engine, pg_url: str) -> None:
    h = Harness(pg_url, datetime(2026, 12, 1, 9, tzinfo=UTC))
    try:
        assert h.onboard(body("first")) == "processed"
        # Refused (an embedded line in another currency): no invoice, so no number.
        refused = body("refused", lines=[{"line_id": "g-1", "kind": "gift", "amount": "5.00", "currency": "EUR",
                                          "label": "gift", "reason": "typo", "author": "crm:alice"}])
        assert h.onboard(refused) == "rejected"
        assert h.onboard(body("second")) == "processed"
    finally:
        h.close()
    assert numbers(clean_pg) == [("first", "INV-2026-000001"), ("second", "INV-2026-000002")]
    with clean_pg.connect() as connection:
        assert connection.execute(select(InvoiceCounter.last_number)).scalar_one() == 2
