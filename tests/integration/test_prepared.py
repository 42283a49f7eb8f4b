"""``Prepared`` statements on PostgreSQL and SQLite: the rows Core would give, Core's error handling.

They bypass SQLAlchemy's statement machinery, so these tests hold them to what it would have done:
converted values, the session's transaction, hidden parameters, and a connection the server
dropped invalidated (the next unit of work gets a fresh one) rather than handed out again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, bindparam, select, text
from sqlalchemy.exc import DBAPIError

from models.migrations.runner import migrate
from models.tables.message_delivery import MessageDelivery
from models.tables.prepared import Prepared
from models.tables.store import make_engine, make_session_factory, table_of, transaction, upsert_for

pytestmark = pytest.mark.integration

_DELIVERIES = table_of(MessageDelivery)
_INSERT = Prepared(lambda dialect: (
    upsert_for(dialect, _DELIVERIES)
    .values(message_id=bindparam("message_id"), message_type="t", broker_message_id=bindparam("broker"),
            deliveries=1, first_seen_at=bindparam("seen_at"), last_seen_at=bindparam("seen_at"))
    .on_conflict_do_update(index_elements=[_DELIVERIES.c.message_id],
                           set_={"deliveries": _DELIVERIES.c.deliveries + 1})
    .returning(_DELIVERIES.c.deliveries, _DELIVERIES.c.first_seen_at)
))
_SELECT = Prepared(select(_DELIVERIES.c.message_id).where(_DELIVERIES.c.message_id == bindparam("message_id")))
SEEN = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, clean_pg: Engine, sqlite_url: str) -> Iterator[Engine]:
    if request.param == "postgresql":
        yield clean_pg
        return
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def test_rows_are_converted_as_core_converts_them(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        assert _INSERT.rows(session, {"message_id": "m-1", "broker": "b-1", "seen_at": SEEN}) == [(1, SEEN)]
        assert _INSERT.rows(session, {"message_id": "m-1", "broker": "b-1", "seen_at": SEEN}) == [(2, SEEN)]
        core = session.execute(select(_DELIVERIES.c.deliveries, _DELIVERIES.c.first_seen_at)).one()
        assert tuple(core) == (2, SEEN)
        assert _SELECT.execute(session, {"message_id": "m-1"}) == [("m-1",)]
        assert _SELECT.execute(session, {"message_id": "nobody"}) == []


def test_a_prepared_write_is_part_of_the_session_s_transaction(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with pytest.raises(RuntimeError), transaction(sessions) as session:
        _INSERT.rows(session, {"message_id": "rolled-back", "broker": "b", "seen_at": SEEN})
        raise RuntimeError("the unit of work fails after the write")
    with transaction(sessions) as session:
        assert _SELECT.execute(session, {"message_id": "rolled-back"}) == []


def test_results_needing_conversion_are_refused_by_execute(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with pytest.raises(TypeError, match="rows"), transaction(sessions) as session:
        _INSERT.execute(session, {"message_id": "m-2", "broker": "b", "seen_at": SEEN})


def test_a_failing_statement_raises_sqlalchemy_s_error_without_its_parameters(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with pytest.raises(DBAPIError) as raised, transaction(sessions) as session:
        _INSERT.rows(session, {"message_id": "m-3", "broker": None, "seen_at": SEEN})  # NOT NULL column
    assert "parameters hidden" in str(raised.value)  # the server may quote the row; logs scrub that


def test_a_connection_the_server_dropped_is_invalidated_and_replaced(clean_pg: Engine, pg_url: str) -> None:
    engine = make_engine(pg_url)  # a pool of its own, holding one connection: the victim
    try:
        with engine.connect() as connection:
            victim = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with clean_pg.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        sessions = make_session_factory(engine)
        with pytest.raises(DBAPIError) as raised, transaction(sessions) as session:
            _SELECT.execute(session, {"message_id": "m-4"})  # the first statement on the dead connection
        assert raised.value.connection_invalidated
        with transaction(sessions) as session:
            assert _SELECT.execute(session, {"message_id": "m-4"}) == []
            assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != victim
    finally:
        engine.dispose()


def test_statements_after_a_failed_one_run_on_the_same_connection(engine: Engine) -> None:
    postgres = engine.dialect.name == "postgresql"
    single = make_engine(engine.url.render_as_string(hide_password=False)) if postgres else engine  # one connection
    try:
        sessions = make_session_factory(single)
        with pytest.raises(DBAPIError), transaction(sessions) as session:
            _INSERT.rows(session, {"message_id": "m-5", "broker": None, "seen_at": SEEN})
        with transaction(sessions) as session:  # the pool hands back the same connection
            assert _INSERT.rows(session, {"message_id": "m-5", "broker": "b", "seen_at": SEEN}) == [(1, SEEN)]
    finally:
        if postgres:
            single.dispose()
