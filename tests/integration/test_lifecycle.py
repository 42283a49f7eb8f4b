"""The account's life on PostgreSQL through the real actors: each lifecycle message end to end.

Every amount is written out with its arithmetic (DESIGN §2b): a line is rounded once, half-up;
proration lines are −old × d / n and +new × d / n over the billed period's n days.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from jobs.bill_batches import run_batch
from jobs.context import BrokerDelivery
from jobs.lifecycle import CHANGE, handle_change
from jobs.pipeline import receive
from models.tables.balance_line import BalanceLine
from models.tables.bill_run import BillRun
from models.tables.invoice import Invoice
from models.tables.invoice_line import InvoiceLine
from models.tables.rejection import Rejection
from models.tables.subscription import Subscription
from tests.integration.producers import audit_of
from tests.integration.stub_stack import StubStack

pytestmark = pytest.mark.integration

LIFECYCLE_TYPES = ["subscription.add", "subscription.change", "subscription.pause", "subscription.resume",
                   "subscription.cancel", "account.update"]
PRODUCERS = {
    "crm": {"keys": [{"id": "crm-1", "secret": "crm-secret-0123456789abcdef"}],
            "types": ["account.onboard", "balance_line.create", *LIFECYCLE_TYPES]},
    "ops": {"keys": [{"id": "ops-1", "secret": "ops-secret-0123456789abc"}], "types": ["bill_run.trigger"]},
    "billing-ui": {"keys": [{"id": "ui-1", "secret": "ui-secret-0123456789abcd"}], "types": ["account.onboard"]},
}
Invoice_ = tuple[date, str, list[tuple[str, str | None, str | None, str | None, str]]]


@pytest.fixture
def stack(clean_pg: Engine, pg_url: str) -> Iterator[StubStack]:
    stack = StubStack(pg_url, PRODUCERS, datetime(2024, 1, 1, 10, tzinfo=UTC))
    try:
        yield stack
    finally:
        stack.close()


def at(stack: StubStack, day: str, hour: int = 10) -> None:
    stack.clock.set(datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00"))


def onboard(stack: StubStack, start: str, amount: str = "30.00", *, bill_day: int | None = None,
            combine: bool | None = None, account: str = "acme") -> None:
    body: dict[str, Any] = {"account": {"id": account, "name": "Acme", "currency": "USD", "timezone": "UTC"},
                            "start_date": start, "subscriptions": [{"plan": "basic", "amount": amount}]}
    if bill_day is not None:
        body["bill_day"] = bill_day
    if combine is not None:
        body["combine_invoices"] = combine
    at(stack, start)
    stack.send("account.onboard", body)


def change(stack: StubStack, message_type: str, change_id: str, **body: Any) -> str:
    return stack.send(message_type, {"change_id": change_id, "account": "acme", "author": "support:jane",
                                     "reason": "customer request", **body})


def bill_on(stack: StubStack, day: str) -> None:
    at(stack, day, 1)
    stack.bill_run()


def invoices(engine: Engine, account: str = "acme") -> list[Invoice_]:
    """(issue date, total, [(kind, plan, range start, range end, amount)]) per invoice, in issue order."""
    with engine.connect() as connection:
        rows = connection.execute(select(Invoice.id, Invoice.issue_date, Invoice.total_minor)
                                  .where(Invoice.account_id == account).order_by(Invoice.id)).all()
        lines = connection.execute(select(InvoiceLine).join(Invoice, Invoice.id == InvoiceLine.invoice_id)
                                   .where(Invoice.account_id == account).order_by(InvoiceLine.id)).all()

    def money(minor: int) -> str:
        return f"{minor / 100:.2f}"

    return [(issued, money(total), [(line.kind, line.plan, str(line.period_start) if line.period_start else None,
                                     str(line.period_end) if line.period_end else None, money(line.amount_minor))
                                    for line in lines if line.invoice_id == invoice_id])
            for invoice_id, issued, total in rows]


def rejections(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return [(row.code, row.reason) for row in connection.execute(select(Rejection.code, Rejection.reason))]


def test_an_upgrade_is_prorated_on_the_next_invoice(stack: StubStack, capsys: pytest.CaptureFixture[str]) -> None:
    onboard(stack, "2024-01-01", bill_day=1)
    at(stack, "2024-01-11")
    change(stack, CHANGE, "up-1", subscription="basic", plan="pro", amount="60.00", currency="USD")
    assert len(invoices(stack.engine)) == 1  # a change that issues nothing publishes nothing
    bill_on(stack, "2024-02-01")
    bill_on(stack, "2024-02-01")  # a rerun adds nothing
    assert invoices(stack.engine)[1] == (date(2024, 2, 1), "80.33", [
        ("recurring", "pro", "2024-02-01", "2024-02-29", "60.00"),
        ("proration", "basic", "2024-01-11", "2024-01-31", "-20.32"),  # 30 x 21/31 = 20.322
        ("proration", "pro", "2024-01-11", "2024-01-31", "40.65"),  # 60 x 21/31 = 40.645
    ])
    assert len(stack.publisher.events) == 2
    [audited] = [row for row in audit_of(stack, "acme", capsys) if row["event"] == CHANGE]
    assert (audited["line_id"], audited["kind"], audited["subscription"], audited["amount_minor"],
            audited["effective_date"], audited["producer"], audited["author"], audited["reason"]) == (
        "up-1", "change", "basic", "6000", "2024-01-11", "crm", "support:jane", "customer request")
    assert audited["message_id"] and audited["at"]


def test_a_retroactive_downgrade_corrects_two_billed_periods_once(stack: StubStack) -> None:
    onboard(stack, "2024-01-01", "60.00", bill_day=1)
    bill_on(stack, "2024-02-01")
    at(stack, "2024-02-10")
    change(stack, CHANGE, "down-1", subscription="basic", amount="30.00", currency="USD",
           effective_date="2024-01-16")
    change(stack, CHANGE, "down-1", subscription="basic", amount="30.00", currency="USD",
           effective_date="2024-01-16")  # redelivered under its change_id: nothing more
    bill_on(stack, "2024-03-01")
    bill_on(stack, "2024-04-01")
    march, april = invoices(stack.engine)[2:]
    # 30.00 - 60 x 16/31 (30.97) + 30 x 16/31 (15.48) - 60.00 + 30.00 = -15.49: issued at 0, credit 15.49
    assert march == (date(2024, 3, 1), "0.00", [
        ("recurring", "basic", "2024-03-01", "2024-03-31", "30.00"),
        ("proration", "basic", "2024-01-16", "2024-01-31", "-30.97"),
        ("proration", "basic", "2024-01-16", "2024-01-31", "15.48"),
        ("proration", "basic", "2024-02-01", "2024-02-29", "-60.00"),
        ("proration", "basic", "2024-02-01", "2024-02-29", "30.00"),
    ])
    assert april == (date(2024, 4, 1), "14.51", [("recurring", "basic", "2024-04-01", "2024-04-30", "30.00"),
                                                  ("credit", None, None, None, "-15.49")])
    with stack.engine.connect() as connection:
        credit = connection.execute(select(BalanceLine.author, BalanceLine.amount_minor)).one()
    assert tuple(credit) == ("system", 1549)


def test_a_pause_with_until_bills_only_the_days_outside_it(stack: StubStack) -> None:
    onboard(stack, "2024-01-01", bill_day=1)
    at(stack, "2024-01-05")
    change(stack, "subscription.pause", "p-1", subscription="basic", **{"from": "2024-01-11", "until": "2024-02-11"})
    bill_on(stack, "2024-02-01")
    bill_on(stack, "2024-03-01")
    february, march = invoices(stack.engine)[1:]
    # February is billed knowing the pause: 11-29 Feb, 30 x 19/29 = 19.655; January's 21 paused days
    # are credited: -30 x 21/31 = -20.32; 19.66 - 20.32 = -0.66: issued at 0, credit 0.66.
    assert february == (date(2024, 2, 1), "0.00", [
        ("recurring", "basic", "2024-02-11", "2024-02-29", "19.66"),
        ("proration", "basic", "2024-01-11", "2024-01-31", "-20.32"),
    ])
    assert march == (date(2024, 3, 1), "29.34", [("recurring", "basic", "2024-03-01", "2024-03-31", "30.00"),
                                                 ("credit", None, None, None, "-0.66")])


def test_a_cancel_at_period_end_bills_nothing_after_it(stack: StubStack) -> None:
    onboard(stack, "2024-01-01", bill_day=1)
    at(stack, "2024-01-20")
    change(stack, "subscription.cancel", "c-1", subscription="basic", at_period_end=True)
    for day in ("2024-02-01", "2024-03-01"):
        bill_on(stack, day)
    assert [issued for issued, _, _ in invoices(stack.engine)] == [date(2024, 1, 1)]
    with stack.engine.connect() as connection:
        assert connection.scalar(select(Subscription.next_bill_date)) is None  # finished: no run selects it
    at(stack, "2024-03-02")
    change(stack, CHANGE, "late-1", subscription="basic", amount="40.00", currency="USD")
    assert rejections(stack.engine)[-1][0] == "invalid"
    assert "end" in rejections(stack.engine)[-1][1]


def test_a_cancel_with_proration_credits_the_unused_days_at_once(stack: StubStack) -> None:
    onboard(stack, "2024-03-01", "31.00", bill_day=1)
    at(stack, "2024-03-11")
    change(stack, "subscription.cancel", "c-2", subscription="basic")
    assert invoices(stack.engine)[1] == (date(2024, 3, 11), "0.00", [
        ("proration", "basic", "2024-03-11", "2024-03-31", "-21.00"),  # 31 x 21/31
    ])
    with stack.engine.connect() as connection:
        assert connection.execute(select(BalanceLine.kind, BalanceLine.amount_minor, BalanceLine.author)).one() \
            == ("credit", 2100, "system")
    assert len(stack.publisher.events) == 2  # the 0.00 invoice is announced too


def test_a_bill_day_change_across_february_bridges_to_the_new_day(stack: StubStack) -> None:
    onboard(stack, "2024-01-31", "31.00", bill_day=31)
    at(stack, "2024-02-10")
    stack.send("account.update", {"change_id": "bd-1", "account": "acme", "bill_day": 15,
                                  "author": "support:jane", "reason": "customer request"})
    for day in ("2024-02-29", "2024-03-15"):
        bill_on(stack, day)
    assert invoices(stack.engine)[1:] == [
        # the period 31 Jan - 28 Feb stands; bridge 29 Feb - 14 Mar inside the cycle 15 Feb - 14 Mar
        # (29 days in 2024): 31 x 15/29 = 16.034
        (date(2024, 2, 29), "16.03", [("recurring", "basic", "2024-02-29", "2024-03-14", "16.03")]),
        (date(2024, 3, 15), "31.00", [("recurring", "basic", "2024-03-15", "2024-04-14", "31.00")]),
    ]


@pytest.mark.parametrize("combine", [True, False], ids=["combined", "separate"])
def test_a_backdated_add_catches_up(stack: StubStack, combine: bool) -> None:
    onboard(stack, "2024-05-01", "20.00", bill_day=1, combine=combine)
    bill_on(stack, "2024-06-01")
    at(stack, "2024-06-10")
    change(stack, "subscription.add", "add-1", subscription={
        "id": "addon", "plan": "addon", "amount": "9.00", "start_date": "2024-05-20"})
    bill_on(stack, "2024-06-11")
    stub = ("recurring", "addon", "2024-05-20", "2024-05-31", "3.48")  # 9 x 12/31 = 3.484
    june = ("recurring", "addon", "2024-06-01", "2024-06-30", "9.00")
    if combine:
        assert invoices(stack.engine)[2:] == [(date(2024, 6, 10), "12.48", [stub, june])]
    else:
        assert invoices(stack.engine)[2:] == [(date(2024, 6, 10), "3.48", [stub]),
                                              (date(2024, 6, 11), "9.00", [june])]


def test_lifecycle_messages_need_the_producers_permission_and_a_known_subscription(stack: StubStack) -> None:
    onboard(stack, "2024-01-01", bill_day=1)
    stack.send(CHANGE, {"change_id": "x-1", "account": "acme", "subscription": "basic", "amount": "1.00",
                        "currency": "USD", "author": "a", "reason": "r"}, producer="billing-ui")
    change(stack, CHANGE, "x-2", subscription="nope", amount="1.00", currency="USD")
    change(stack, CHANGE, "x-3", subscription="basic", amount="1.00", currency="USD")
    change(stack, CHANGE, "x-3", subscription="basic", amount="2.00", currency="USD")  # same id, other body
    codes = [code for code, _ in rejections(stack.engine)]
    assert codes == ["forbidden", "invalid", "conflict"]
    assert "'nope' is not a subscription of account acme" in rejections(stack.engine)[1][1]


def test_a_change_for_an_account_not_onboarded_yet_waits_for_it(stack: StubStack) -> None:
    at(stack, "2024-01-01", 9)
    change(stack, CHANGE, "early-1", subscription="basic", plan="pro", amount="60.00", currency="USD",
           effective_date="2024-01-11")
    assert invoices(stack.engine) == []
    onboard(stack, "2024-01-01", bill_day=1)
    bill_on(stack, "2024-02-01")
    assert invoices(stack.engine)[1][1] == "80.33"


def test_a_bill_run_beside_a_change_corrects_once(stack: StubStack) -> None:
    """The change and the February batch race for the account's lock: whoever wins, one correction."""
    onboard(stack, "2024-01-01", bill_day=1)
    at(stack, "2024-02-01", 1)
    with stack.engine.begin() as connection:
        run_id = connection.execute(insert(BillRun).values(run_date=None, message_id="race", status="running",
                                                           requested_at=stack.clock.now())
                                    .returning(BillRun.id)).scalar_one()
    envelope = stack.envelope(CHANGE, {"change_id": "race-1", "account": "acme", "subscription": "basic",
                                       "plan": "pro", "amount": "60.00", "currency": "USD",
                                       "effective_date": "2024-01-11", "author": "a", "reason": "r"})
    start = threading.Barrier(2)

    def change_it() -> None:
        start.wait()
        receive(stack.ctx, CHANGE, envelope, handle_change, BrokerDelivery("race-change", stack.clock.now()))

    def bill_it() -> None:
        start.wait()
        run_batch(stack.ctx, run_id, ["acme"], None, batch_key="bill_run.accounts:race")

    threads = [threading.Thread(target=change_it), threading.Thread(target=bill_it)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for day in ("2024-02-01", "2024-03-01", "2024-04-01"):
        bill_on(stack, day)
    lines = [line for _, _, lines in invoices(stack.engine) for line in lines]
    prorations = [line for line in lines if line[0] == "proration"]
    assert ("proration", "basic", "2024-01-11", "2024-01-31", "-20.32") in prorations
    assert ("proration", "pro", "2024-01-11", "2024-01-31", "40.65") in prorations
    assert len(prorations) == len(set(prorations)), prorations  # no range corrected twice
    # If the batch won, February was billed at 30.00 and is corrected (-30.00, +60.00); if the change
    # won, February was billed at 60.00. Either way January to April bill exactly the timeline:
    # 30.00 + 20.33 (11-31 Jan re-rated) + 3 x 60.00.
    assert sum(float(line[4]) for line in lines) == pytest.approx(230.33)


def test_a_future_cancel_is_settled_on_its_day_in_the_accounts_zone(stack: StubStack) -> None:
    at(stack, "2024-03-01", 1)
    stack.send("account.onboard", {"account": {"id": "acme", "name": "Acme", "currency": "USD",
                                               "timezone": "Asia/Tokyo"},
                                   "start_date": "2024-03-01", "bill_day": 1,
                                   "subscriptions": [{"plan": "basic", "amount": "31.00"}]})
    at(stack, "2024-03-05")
    change(stack, "subscription.cancel", "c-3", subscription="basic", effective_date="2024-03-21")
    assert len(invoices(stack.engine)) == 1  # nothing to settle before the end
    stack.clock.set(datetime(2024, 3, 20, 14, tzinfo=UTC))  # 23:00 on 20 Mar in Tokyo
    stack.bill_run()
    assert len(invoices(stack.engine)) == 1
    stack.clock.set(datetime(2024, 3, 20, 15, tzinfo=UTC))  # midnight: 21 Mar in Tokyo
    stack.bill_run()
    assert invoices(stack.engine)[1:] == [(date(2024, 3, 21), "0.00", [
        ("proration", "basic", "2024-03-21", "2024-03-31", "-11.00"),  # 31 x 11/31
    ])]
    for day in ("2024-04-01", "2024-05-01"):
        bill_on(stack, day)
    assert len(invoices(stack.engine)) == 2  # nothing after the end
