"""Bulk writes: a few short statements per batch, whatever its size.

On PostgreSQL the rows travel as one array per column, ``INSERT ... SELECT ... FROM unnest(...)``
and ``UPDATE ... FROM unnest(...)``: the statement text is short and the same for every batch, so
the driver converts it once and the server prepares it once. A multi-row VALUES statement
(insertmanyvalues) carries a placeholder per value, and psycopg caches only statements under
4 KB, so a large batch would be re-parsed every time. The arrays are sent in binary: psycopg's
default text format escapes every quote of every element in Python. ``docs/benchmarks.md`` says
what each choice was worth.

A few rows (an onboarding's invoice, its lines, its event: up to ``SMALL_BATCH``) go as one
multi-row ``VALUES`` statement instead, prepared once per table, column set and row count
(``models.tables.prepared``): dumping a dozen one-element arrays cost more than the statement,
and its text stays short enough for psycopg to prepare it on the server. One row is updated by a
prepared ``UPDATE ... WHERE id``.

Ids come back the way SQLAlchemy's insertmanyvalues gets them in parameter order: the rows are
inserted in order (``ORDER BY ordinality``, or the ``VALUES`` order) and the sequence hands out
ascending ids, so sorted ids match the rows. On SQLite (in process, no round trips) large batches
are Core executemany and insertmanyvalues with ``sort_by_parameter_order``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import Executable, Table, bindparam, cast, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from models.tables.prepared import Prepared
from models.tables.store import is_postgres, table_of

__all__ = ["insert_columns", "insert_rows", "table_of", "update_rows"]

Row = Mapping[str, Any]
BINARY_ARRAYS = "billing_binary_arrays"
SMALL_BATCH = 8
"""Up to this many rows are inserted by one prepared multi-row ``VALUES`` statement."""


def _binary_arrays(session: Session) -> None:
    """Send list parameters as binary arrays on this connection (same values, no escaping)."""
    pooled = session.connection().connection
    if not pooled.info.get(BINARY_ARRAYS):
        from psycopg.types.array import ListBinaryDumper  # psycopg only where PostgreSQL is used

        pooled.driver_connection.adapters.register_dumper(list, ListBinaryDumper)  # type: ignore[union-attr]
        pooled.info[BINARY_ARRAYS] = True


def _array_parameters(table: Table, columns: Sequence[str]) -> list[ColumnElement[Any]]:
    """One typed array parameter per column: ``CAST(:bulk_name AS type[])``."""
    return [cast(bindparam(f"bulk_{name}", type_=ARRAY(table.c[name].type)), ARRAY(table.c[name].type))
            for name in columns]


def _values(rows: Sequence[Row], columns: Sequence[str], source: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The arrays themselves: ``bulk_<column>`` -> one list of the rows' values (``source`` renames keys)."""
    return {f"bulk_{name}": [row[(source or {}).get(name, name)] for row in rows] for name in columns}


@cache
def _insert_statement(table: Table, columns: tuple[str, ...], return_ids: bool) -> Executable:
    """Built once per table and column set, so SQLAlchemy, psycopg and the server all reuse it."""
    source = (func.unnest(*_array_parameters(table, columns))
              .table_valued(*columns, with_ordinality="ordinality").render_derived(name="batch"))
    statement = insert(table).from_select(list(columns), select(*(source.c[name] for name in columns))
                                          .order_by(source.c.ordinality))
    return statement.returning(table.c.id) if return_ids else statement


@cache
def _update_statement(table: Table, columns: tuple[str, ...]) -> Executable:
    names = ("id", *columns)
    source = func.unnest(*_array_parameters(table, names)).table_valued(*names).render_derived(name="changes")
    return update(table).where(table.c.id == source.c.id).values({name: source.c[name] for name in columns})


@lru_cache(maxsize=512)
def _values_insert(table: Table, columns: tuple[str, ...], rows: int, return_ids: bool) -> Prepared:
    """``INSERT ... VALUES (:name_0, ...), (:name_1, ...)`` for ``rows`` rows, prepared once."""
    values = [{name: bindparam(f"{name}_{index}", type_=table.c[name].type) for name in columns}
              for index in range(rows)]
    statement = insert(table).values(values)
    return Prepared(statement.returning(table.c.id) if return_ids else statement)


@cache
def _row_update(table: Table, columns: tuple[str, ...]) -> Prepared:
    """``UPDATE ... SET name = :new_name ... WHERE id = :row_id``, prepared once."""
    return Prepared(update(table).where(table.c.id == bindparam("row_id", type_=table.c.id.type))
                    .values({name: bindparam(f"new_{name}", type_=table.c[name].type) for name in columns}))


def _insert_small(session: Session, table: Table, columns: Mapping[str, Sequence[Any]], return_ids: bool) -> list[int]:
    names = tuple(columns)
    count = len(columns[names[0]])
    parameters = {f"{name}_{index}": value for name, values in columns.items() for index, value in enumerate(values)}
    rows = _values_insert(table, names, count, return_ids).execute(session, parameters)
    return sorted(int(value) for value, in rows) if return_ids else []


def insert_rows(session: Session, table: Table, rows: Sequence[Row], *, return_ids: bool = False) -> list[int]:
    """Insert ``rows`` (dicts with the same keys) in one statement; their ids in row order if asked."""
    if not rows:
        return []
    columns = tuple(rows[0])
    return insert_columns(session, table, {name: [row[name] for row in rows] for name in columns},
                          return_ids=return_ids)


def insert_columns(
    session: Session, table: Table, columns: Mapping[str, Sequence[Any]], *, return_ids: bool = False
) -> list[int]:
    """Insert rows given column by column (lists of equal length); their ids in row order if asked.

    Callers that build the columns ahead of time keep the statement's own Python work minimal.
    """
    names = tuple(columns)
    if not names or not columns[names[0]]:
        return []
    if len(columns[names[0]]) <= SMALL_BATCH:
        return _insert_small(session, table, columns, return_ids)
    if not is_postgres(session):
        rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
        if not return_ids:
            session.execute(insert(table), rows)
            return []
        returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [int(value) for value in session.execute(returning, rows).scalars().all()]
    _binary_arrays(session)
    parameters = {f"bulk_{name}": list(values) for name, values in columns.items()}
    result = session.execute(_insert_statement(table, names, return_ids), parameters)
    return sorted(int(value) for value in result.scalars().all()) if return_ids else []


def update_rows(session: Session, table: Table, rows: Sequence[Row], *, key: str) -> None:
    """Set each row's other columns where ``id`` equals its ``key`` value, in one statement."""
    if not rows:
        return
    columns = tuple(name for name in rows[0] if name != key)
    if len(rows) == 1:
        _row_update(table, columns).execute(session, {"row_id": rows[0][key],
                                                      **{f"new_{name}": rows[0][name] for name in columns}})
        return
    if not is_postgres(session):
        statement = (update(table).where(table.c.id == bindparam(key))
                     .values({name: bindparam(f"new_{name}") for name in columns}))
        session.execute(statement, [{key: row[key], **{f"new_{name}": row[name] for name in columns}}
                                    for row in rows])
        return
    _binary_arrays(session)
    session.execute(_update_statement(table, columns), _values(rows, ("id", *columns), {"id": key}))
