"""Bill runs in process on PostgreSQL (and SQLite where it matters): catch-up after an outage, local
dates in six time zones across DST changes and a month end, a poisoned account, a bulk write that
conflicts, accounts held by another run, and the due query's index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import Engine, func, insert, select, text

from models.migrations.runner import migrate
from models.tables.bill_run import BillRun, BillRunFailure
from models.tables.invoice import Invoice
from models.tables.invoice_counter import InvoiceCounter
from models.tables.invoice_line import InvoiceLine
from models.tables.outbox import OutboxEvent
from models.tables.store import make_engine
from models.tables.subscription import Subscription
from tests.integration.bill_run_harness import Harness, seed_due_accounts, ticks

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A migrated, empty database of each kind, as (url, engine)."""
    if request.param == "postgresql":
        engine: Engine = request.getfixturevalue("clean_pg")
        yield request.getfixturevalue("pg_url"), engine
        return
    url = f"sqlite:///{tmp_path / 'bill-runs.sqlite3'}"
    migrate(url)
    sqlite_engine = make_engine(url)
    yield url, sqlite_engine
    sqlite_engine.dispose()


@pytest.fixture
def pg(clean_pg: Engine, pg_url: str) -> tuple[str, Engine]:
    return pg_url, clean_pg


def harness(url: str, start: datetime, **settings: object) -> Harness:
    return Harness(url, start, **settings)


def onboarding(account_id: str, *, timezone: str, start: date, bill_day: int, combine: bool | None = None,
               subscriptions: list[dict[str, object]] | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "account": {"id": account_id, "name": f"Account {account_id}", "currency": "USD", "timezone": timezone},
        "start_date": start.isoformat(), "bill_day": bill_day,
        "subscriptions": subscriptions or [{"plan": "pro-monthly", "amount": "30.00"}],
    }
    if combine is not None:
        body["combine_invoices"] = combine
    return body


def invoices_of(engine: Engine, account_id: str, *, since_run: bool = True) -> list[dict[str, object]]:
    """The account's bill-run invoices (id order) with their recurring lines."""
    with engine.connect() as connection:
        query = select(Invoice).where(Invoice.account_id == account_id).order_by(Invoice.id)
        if since_run:
            query = query.where(Invoice.bill_run_id.is_not(None))
        found = []
        for invoice in connection.execute(query).all():
            lines = connection.execute(
                select(InvoiceLine.plan, InvoiceLine.period_start, InvoiceLine.period_end, InvoiceLine.amount_minor)
                .where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.position)
            ).all()
            found.append({"number": invoice.number, "issue_date": invoice.issue_date,
                          "created_at": invoice.created_at, "total": invoice.total_minor,
                          "lines": [tuple(line) for line in lines]})
    return found


def count(engine: Engine, model: type, *where: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


# --- catch-up after a three-day outage -------------------------------------------------------------

OUTAGE_SUBSCRIPTIONS = [
    {"plan": "monthly", "amount": "30.00"},  # bill day 15: due Mon 15 June
    {"plan": "weekly-tue", "amount": "7.00", "interval": "week", "bill_weekday": 2},  # due Tue 16 June
    {"plan": "weekly-wed", "amount": "5.00", "interval": "week", "bill_weekday": 3},  # due Wed 17 June
]


def test_a_three_day_scheduler_outage_is_caught_up_exactly(database: tuple[str, Engine]) -> None:
    url, engine = database
    h = harness(url, datetime(2026, 6, 12, 10, tzinfo=UTC))
    try:
        for account_id, combine in (("combined", True), ("separate", False)):
            assert h.onboard(onboarding(account_id, timezone="UTC", start=date(2026, 5, 15), bill_day=15,
                                        combine=combine, subscriptions=OUTAGE_SUBSCRIPTIONS)) == "processed"
        before = {account_id: len(invoices_of(engine, account_id, since_run=False))
                  for account_id in ("combined", "separate")}
        for tick in ticks(datetime(2026, 6, 12, 11, tzinfo=UTC), datetime(2026, 6, 15, tzinfo=UTC)):
            h.clock.set(tick)  # the scheduler runs hourly until 14 June 23:00, then is down 15-17 June
            h.run()
        last_before_outage = h.run_row(_last_run_id(engine))
        assert last_before_outage.accounts_due == 0
        held_back = len(invoices_of(engine, "separate"))  # separate mode: catch-up periods released 13 June

        h.clock.set(datetime(2026, 6, 18, tzinfo=UTC))
        run = h.run()
    finally:
        h.close()
    assert run is not None
    assert (run.status, run.accounts_due, run.invoiced, run.skipped, run.failed) == ("finished", 2, 2, 0, 0)
    assert before == {"combined": 1, "separate": 1}
    assert invoices_of(engine, "combined")[-1:] == [{
        "number": invoices_of(engine, "combined")[-1]["number"], "issue_date": date(2026, 6, 18),
        "created_at": datetime(2026, 6, 18, tzinfo=UTC), "total": 4200,
        "lines": [("monthly", date(2026, 6, 15), date(2026, 7, 14), 3000),
                  ("weekly-tue", date(2026, 6, 16), date(2026, 6, 22), 700),
                  ("weekly-wed", date(2026, 6, 17), date(2026, 6, 23), 500)],
    }]
    assert len(invoices_of(engine, "combined")) == 1  # nothing else was billed by a run
    separate = invoices_of(engine, "separate")[held_back:]
    assert [(i["issue_date"], i["total"], i["lines"]) for i in separate] == [
        (date(2026, 6, 18), 3000, [("monthly", date(2026, 6, 15), date(2026, 7, 14), 3000)]),
        (date(2026, 6, 18), 700, [("weekly-tue", date(2026, 6, 16), date(2026, 6, 22), 700)]),
        (date(2026, 6, 18), 500, [("weekly-wed", date(2026, 6, 17), date(2026, 6, 23), 500)]),
    ]
    numbers = [int(str(i["number"]).rsplit("-", 1)[1]) for i in separate]
    assert numbers == list(range(numbers[0], numbers[0] + 3))
    assert count(engine, Invoice) == count(engine, OutboxEvent)


def _last_run_id(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.max(BillRun.id))).scalar_one())


# --- six time zones, DST changes and a month end ---------------------------------------------------

SIX_ZONES = ("Pacific/Kiritimati", "Asia/Tokyo", "Europe/Berlin", "UTC", "America/New_York", "Pacific/Pago_Pago")


def _first_tick_at_or_after_local_midnight(day: date, zone: str) -> datetime:
    midnight = datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC)
    whole_hour = midnight.replace(minute=0, second=0, microsecond=0)
    return whole_hour if whole_hour == midnight else whole_hour + HOUR


@pytest.mark.parametrize(
    ("window", "zones", "bill_days"),
    [
        # EU summer time starts 29 March 2026 (01:00 UTC); March has 31 days; 1 April opens a month.
        ((datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC)), SIX_ZONES, (29, 30, 31, 1)),
        # US daylight time started 8 March 2026 (07:00 UTC): New York moves from UTC-5 to UTC-4.
        ((datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 10, 12, tzinfo=UTC)),
         ("America/New_York", "America/Los_Angeles", "UTC"), (8, 9)),
    ],
    ids=["eu-dst-month-end", "us-dst"],
)
def test_each_account_is_billed_at_the_first_run_after_its_local_midnight(
    pg: tuple[str, Engine], window: tuple[datetime, datetime], zones: tuple[str, ...], bill_days: tuple[int, ...],
) -> None:
    url, engine = pg
    start, end = window
    h = harness(url, start - timedelta(days=1), bill_run_batch_size=7)
    due_on: dict[str, date] = {}
    try:
        for zone in zones:
            for bill_day in bill_days:
                account_id = f"{zone.replace('/', '-').lower()}-{bill_day}"
                month = start if bill_day >= start.day else end  # the window's first bill date on that day
                due = date(month.year, month.month, bill_day)
                previous = (due.replace(day=1) - timedelta(days=1)).replace(day=1)  # the month before
                last_day = (due.replace(day=1) - timedelta(days=1)).day
                first = previous.replace(day=min(bill_day, last_day))  # that month's anchor
                assert h.onboard(onboarding(account_id, timezone=zone, start=first, bill_day=bill_day)) == "processed"
                due_on[account_id] = due
        runs = []
        for tick in ticks(start, end):
            h.clock.set(tick)
            runs.append((tick, h.run()))
    finally:
        h.close()

    expected = {account_id: _first_tick_at_or_after_local_midnight(day, account_id_zone(account_id, zones))
                for account_id, day in due_on.items()}
    for account_id, day in due_on.items():
        invoices = invoices_of(engine, account_id)
        assert [(i["issue_date"], i["created_at"]) for i in invoices] == [(day, expected[account_id])], account_id
    for tick, run in runs:  # a run enqueues exactly the accounts due at that hour, and skips none
        due_now = sum(1 for at in expected.values() if at == tick)
        assert run is not None
        assert (run.status, run.accounts_due, run.invoiced, run.skipped, run.failed) == \
            ("finished", due_now, due_now, 0, 0), tick
    if "Europe/Berlin" in zones:  # spot checks against hand-computed instants
        assert expected["europe-berlin-29"] == datetime(2026, 3, 28, 23, tzinfo=UTC)  # CET, UTC+1
        assert expected["europe-berlin-30"] == datetime(2026, 3, 29, 22, tzinfo=UTC)  # CEST, UTC+2
        assert expected["pacific-kiritimati-1"] == datetime(2026, 3, 31, 10, tzinfo=UTC)
        assert expected["pacific-pago_pago-31"] == datetime(2026, 3, 31, 11, tzinfo=UTC)
        assert expected["asia-tokyo-29"] == datetime(2026, 3, 28, 15, tzinfo=UTC)
    else:
        assert expected["america-new_york-8"] == datetime(2026, 3, 8, 5, tzinfo=UTC)  # EST, UTC-5
        assert expected["america-new_york-9"] == datetime(2026, 3, 9, 4, tzinfo=UTC)  # EDT, UTC-4


def account_id_zone(account_id: str, zones: tuple[str, ...]) -> str:
    return next(zone for zone in zones if account_id.startswith(zone.replace("/", "-").lower() + "-"))


# --- a poisoned account, a conflicting bulk write, accounts held elsewhere ---------------------------

DUE = date(2026, 5, 4)
NOW = datetime(2026, 5, 4, 12, tzinfo=UTC)


def _poison(engine: Engine, account_id: str) -> None:
    """A subscription the core refuses: a bill month needs an interval that divides a year, 5 does not."""
    seed_due_accounts(engine, [account_id], due=DUE)
    with engine.begin() as connection:
        connection.execute(
            Subscription.__table__.update().where(Subscription.account_id == account_id)
            .values(interval_count=5, bill_month=3)
        )


def test_a_poisoned_account_fails_alone_and_is_recorded(database: tuple[str, Engine]) -> None:
    url, engine = database
    ids = [f"acct-{n:03d}" for n in range(40)]
    seed_due_accounts(engine, ids, due=DUE)
    _poison(engine, "acct-poison")
    h = harness(url, NOW)
    try:
        run = h.run()
    finally:
        h.close()
    assert run is not None
    assert (run.status, run.accounts_due, run.invoiced, run.skipped, run.failed) == ("finished", 41, 40, 0, 1)
    assert count(engine, Invoice) == 40 and count(engine, OutboxEvent) == 40
    assert count(engine, Invoice, Invoice.account_id == "acct-poison") == 0
    with engine.connect() as connection:
        failures = connection.execute(select(BillRunFailure.account_id, BillRunFailure.code,
                                             BillRunFailure.reason, BillRunFailure.bill_run_id)).all()
        last = connection.execute(select(InvoiceCounter.last_number)).scalar_one()
    assert [(f.account_id, f.code, f.bill_run_id) for f in failures] == [("acct-poison", "invalid", run.id)]
    assert failures[0].reason == "bill_month: needs an interval that divides a year or spans whole years, not 5 months"
    assert last == 40  # numbers 1..40: the failed account consumed none


def _balance_line(
    line_id: str, account_id: str, kind: str, *, amount_minor: int | None = None, percent: str | None = None,
    expires_on: date | None = None, approval: bool = False,
) -> dict[str, object]:
    from decimal import Decimal

    return {"line_id": line_id, "account_id": account_id, "kind": kind, "amount_minor": amount_minor,
            "percent": Decimal(percent) if percent else None, "currency": "USD", "label": line_id, "reason": "test",
            "author": "support:ana", "producer": "crm", "message_id": f"m-{line_id}",
            "effective_date": date(2026, 4, 1), "expires_on": expires_on, "requires_approval": approval,
            "body_hash": "b" * 64}


def test_balance_lines_apply_lapse_and_wait_in_one_bulk_batch(database: tuple[str, Engine]) -> None:
    """Credits, discounts and lapses of several accounts in one batch: every applied entry names its
    invoice and the invoice line that printed it."""
    from models.tables.balance_entry import BalanceEntry
    from models.tables.balance_line import BalanceLine

    url, engine = database
    seed_due_accounts(engine, ["a-credit", "b-percent", "c-pending", "d-expired", "e-both", "f-plain"], due=DUE)
    with engine.begin() as connection:
        connection.execute(insert(BalanceLine), [
            _balance_line("c1", "a-credit", "credit", amount_minor=500),
            _balance_line("p1", "b-percent", "discount", percent="10"),
            _balance_line("c2", "c-pending", "credit", amount_minor=500, approval=True),
            _balance_line("c3", "d-expired", "credit", amount_minor=500, expires_on=date(2026, 4, 30)),
            _balance_line("c4", "e-both", "credit", amount_minor=400),
            _balance_line("d1", "e-both", "discount", amount_minor=200),
        ])
    h = harness(url, NOW)
    try:
        run = h.run()
    finally:
        h.close()
    assert run is not None
    assert (run.status, run.accounts_due, run.invoiced, run.skipped, run.failed) == ("finished", 6, 6, 0, 0)
    with engine.connect() as connection:
        totals = dict(connection.execute(select(Invoice.account_id, Invoice.total_minor)).all())
        lines = connection.execute(
            select(Invoice.account_id, InvoiceLine.id, InvoiceLine.invoice_id, InvoiceLine.position,
                   InvoiceLine.kind, InvoiceLine.amount_minor, BalanceLine.line_id)
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .outerjoin(BalanceLine, BalanceLine.id == InvoiceLine.balance_line_id)
            .where(InvoiceLine.kind != "recurring").order_by(Invoice.account_id, InvoiceLine.position)
        ).all()
        entries = connection.execute(
            select(BalanceLine.line_id, BalanceEntry.kind, BalanceEntry.amount_minor, BalanceEntry.invoice_id,
                   BalanceEntry.invoice_line_id)
            .join(BalanceLine, BalanceLine.id == BalanceEntry.balance_line_id).order_by(BalanceLine.line_id)
        ).all()
    assert totals == {"a-credit": 2500, "b-percent": 2700, "c-pending": 3000, "d-expired": 3000, "e-both": 2400,
                      "f-plain": 3000}
    assert [(r.account_id, r.position, r.kind, r.amount_minor, r.line_id) for r in lines] == [
        ("a-credit", 1, "credit", -500, "c1"), ("b-percent", 1, "discount", -300, "p1"),
        ("e-both", 1, "discount", -200, "d1"), ("e-both", 2, "credit", -400, "c4"),
    ]
    printed = {r.line_id: (r.invoice_id, r.id) for r in lines}
    assert [(e.line_id, e.kind, e.amount_minor) for e in entries] == [
        ("c1", "applied", 500), ("c3", "lapsed", 500), ("c4", "applied", 400), ("d1", "applied", 200),
        ("p1", "applied", 300),
    ]
    for entry in entries:
        expected = printed.get(entry.line_id, (None, None))
        assert (entry.invoice_id, entry.invoice_line_id) == expected, entry.line_id


def test_a_conflicting_bulk_write_falls_back_to_one_account_at_a_time(database: tuple[str, Engine]) -> None:
    """Another writer invoiced one account's period without moving its watermark: the batch's bulk
    insert hits UNIQUE(subscription_id, period_start), rolls back to its savepoint, and the other
    accounts are written one by one."""
    url, engine = database
    ids = [f"acct-{n:02d}" for n in range(10)]
    seed_due_accounts(engine, ids, due=DUE)
    with engine.begin() as connection:
        subscription_id = connection.execute(
            select(Subscription.id).where(Subscription.account_id == "acct-04")).scalar_one()
        invoice_id = connection.execute(insert(Invoice).values(
            number="MANUAL-1", account_id="acct-04", issue_date=DUE, currency="USD", subtotal_minor=3000,
            discount_minor=0, credit_minor=0, total_minor=3000).returning(Invoice.id)).scalar_one()
        connection.execute(insert(InvoiceLine).values(
            invoice_id=invoice_id, position=0, kind="recurring", subscription_id=subscription_id, plan="plan-0",
            period_start=DUE, period_end=date(2026, 6, 3), amount_minor=3000))
    h = harness(url, NOW)
    try:
        run = h.run()
    finally:
        h.close()
    assert run is not None
    assert (run.status, run.accounts_due, run.invoiced, run.skipped, run.failed) == ("finished", 10, 9, 0, 1)
    with engine.connect() as connection:
        failure = connection.execute(select(BillRunFailure.account_id, BillRunFailure.code)).one()
        numbers = sorted(connection.execute(select(Invoice.number).where(Invoice.bill_run_id == run.id)).scalars())
    assert tuple(failure) == ("acct-04", "conflict")
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 10)]
    assert sorted(event["data"]["number"] for event in h.publisher.events) == numbers  # one event per invoice
    assert count(engine, Invoice) == 10  # nine new plus the manual one


def test_an_unknown_time_zone_is_recorded_as_a_failure_that_names_it(database: tuple[str, Engine]) -> None:
    url, engine = database
    seed_due_accounts(engine, ["acct-1", "acct-2"], due=DUE)
    seed_due_accounts(engine, ["acct-mars"], due=DUE, timezone="Mars/Olympus_Mons")
    h = harness(url, NOW)
    try:
        run = h.run()
    finally:
        h.close()
    assert run is not None
    assert (run.status, run.accounts_due, run.invoiced, run.skipped, run.failed) == ("finished", 3, 2, 0, 1)
    with engine.connect() as connection:
        failure = connection.execute(select(BillRunFailure.account_id, BillRunFailure.code,
                                            BillRunFailure.reason)).one()
    assert tuple(failure) == ("acct-mars", "invalid",
                              "timezone: 'Mars/Olympus_Mons' is not an IANA time zone this machine knows")


def test_a_redelivered_trigger_starts_no_second_run(pg: tuple[str, Engine]) -> None:
    from jobs.bill_runs import TRIGGER

    url, engine = pg
    seed_due_accounts(engine, [f"acct-{n}" for n in range(5)], due=DUE)
    h = harness(url, NOW)
    try:
        envelope = h.envelope(TRIGGER, {})
        first = h.trigger(envelope=envelope)
        second = h.trigger(envelope=envelope)
        batches = h.drain()
    finally:
        h.close()
    assert first is not None and second is None and batches == 1
    assert count(engine, BillRun) == 1 and count(engine, Invoice) == 5


def test_a_redelivered_batch_changes_no_counter(database: tuple[str, Engine]) -> None:
    from jobs.bill_batches import BatchOutcome, bill_batch
    from models.tables.store import transaction

    url, engine = database
    ids = [f"acct-{n}" for n in range(4)]
    seed_due_accounts(engine, ids, due=DUE)
    h = harness(url, NOW)
    try:
        run_id = h.trigger()
        assert run_id is not None
        h.broker.messages.clear()  # the batch runs below, twice, as a redelivered message would
        outcomes = []
        for _ in range(2):
            with transaction(h.ctx.sessions) as session:
                outcomes.append(bill_batch(h.ctx, session, run_id, ids, None, NOW, batch_key="bill_run.accounts:m-1"))
        run = h.run_row(run_id)
    finally:
        h.close()
    assert outcomes == [BatchOutcome(4, 0, 0), BatchOutcome(0, 0, 0)]
    assert (run.status, run.accounts_due, run.invoiced, run.skipped, run.failed) == ("finished", 4, 4, 0, 0)
    assert count(engine, Invoice) == 4


def test_a_fan_out_cut_short_fails_its_run_and_the_retry_bills_everything_once(pg: tuple[str, Engine]) -> None:
    from jobs.bill_runs import TRIGGER

    url, engine = pg
    ids = [f"acct-{n:02d}" for n in range(10)]
    seed_due_accounts(engine, ids, due=DUE)
    h = harness(url, NOW, bill_run_batch_size=3)
    try:
        envelope = h.envelope(TRIGGER, {})
        h.broker.fail_after = 2
        with pytest.raises(ConnectionError):
            h.trigger(envelope=envelope)  # dramatiq would retry the trigger message
        failed = h.run_row(_last_run_id(engine))
        h.broker.fail_after = None
        retried = h.trigger(envelope=envelope)
        h.drain()  # the two batches the first fan-out sent, then the retry's four
        assert retried is not None
        retry = h.run_row(retried)
        failed_after = h.run_row(failed.id)
    finally:
        h.close()
    assert (failed.status, failed.accounts_due) == ("failed", 6)
    assert (failed_after.status, failed_after.invoiced) == ("failed", 6)
    assert (retry.status, retry.accounts_due, retry.invoiced, retry.skipped, retry.failed) == \
        ("finished", 10, 4, 6, 0)
    assert count(engine, Invoice) == 10 and count(engine, InvoiceLine) == 10


def test_an_account_another_run_holds_is_skipped_and_billed_by_the_next_run(pg: tuple[str, Engine]) -> None:
    url, engine = pg
    ids = [f"acct-{n:02d}" for n in range(12)]
    seed_due_accounts(engine, ids, due=DUE)
    h = harness(url, NOW)
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo) as holder:  # another run's transaction holds acct-07
            holder.execute("SELECT pg_advisory_xact_lock(hashtextextended('acct-07', 0))")
            first = h.run()
        h.clock.set(NOW + HOUR)
        second = h.run()
    finally:
        h.close()
    assert first is not None and second is not None
    assert (first.status, first.accounts_due, first.invoiced, first.skipped, first.failed) == ("finished", 12, 11, 1, 0)
    assert (second.status, second.accounts_due, second.invoiced, second.skipped, second.failed) == \
        ("finished", 1, 1, 0, 0)
    assert count(engine, Invoice) == 12 and count(engine, InvoiceLine) == 12


def test_a_run_enqueues_each_multi_plan_account_once_in_batches(pg: tuple[str, Engine]) -> None:
    url, engine = pg
    ids = [f"acct-{n:03d}" for n in range(25)]
    seed_due_accounts(engine, ids, due=DUE, plans=3)
    with engine.begin() as connection:  # later plans of some accounts fall due on other days
        connection.execute(text("UPDATE subscriptions SET next_bill_date = next_bill_date - 2 "
                                "WHERE position = 2 AND account_id < 'acct-010'"))
    h = harness(url, NOW, bill_run_batch_size=4)
    try:
        run_id = h.trigger()
        batches = [list(message.args[1]) for message in h.broker.messages]
        h.drain()
        assert run_id is not None
        run = h.run_row(run_id)
    finally:
        h.close()
    enqueued = [account_id for batch in batches for account_id in batch]
    assert sorted(enqueued) == ids and len(batches) == 7
    assert (run.status, run.accounts_due, run.invoiced, run.skipped, run.failed) == ("finished", 25, 25, 0, 0)


def test_the_due_query_walks_the_next_bill_date_index(pg: tuple[str, Engine]) -> None:
    """EXPLAIN of one page on 6,000 subscriptions of which 200 are due: the range and the cursor use the index."""
    from jobs.due import due_page_query

    _url, engine = pg
    seed_due_accounts(engine, [f"due-{n:04d}" for n in range(200)], due=DUE)
    seed_due_accounts(engine, [f"later-{n:04d}" for n in range(5800)], due=DUE + timedelta(days=20))
    query = due_page_query({"UTC": DUE}, (DUE, "due-0099"), 300)
    with engine.begin() as connection:
        compiled = query.compile(dialect=connection.dialect)
        connection.execute(text("ANALYZE"))
        plan = [row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled.string}", compiled.params)]
        page = connection.execute(query).all()
    assert any("Index Scan on ix_subscriptions_next_bill_date" in line or
               "Index Scan using ix_subscriptions_next_bill_date" in line for line in plan), plan
    assert any("Index Cond: ((next_bill_date <= '2026-05-04'::date) AND (ROW(next_bill_date" in line
               for line in plan), plan  # the range and the keyset cursor are both index conditions
    assert [account for _, account in page] == [f"due-{n:04d}" for n in range(100, 200)]
