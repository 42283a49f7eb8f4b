"""Statements built and compiled once per process, then sent on the connection's cursor: the per-message path.

On every ``execute`` of a Core statement SQLAlchemy builds it (when it is written inline), computes
its cache key, looks up the compiled form and sets up an execution context and a result: about
0.3 ms of Python a statement on this kind of machine, and a message runs eight. Even
``exec_driver_sql`` still sets up the context and the result (about half of that). A ``Prepared``
statement is built once, compiled once per dialect, and run with the connection's own cursor
through ``Connection._cursor_execute``, the path SQLAlchemy's dialects use for their internal
statements: still the connection's transaction, its cursor events and its error handling
(``hide_parameters``, a lost connection invalidating the pool), without the rest. Values go
through the bind processors the compiled statement would apply, results through its result
processors, so each dialect stores and returns exactly what a Core execute would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]
Build = Callable[[str], Executable]
"""Builds the statement for a dialect name (``upsert`` is spelt per dialect)."""


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None
    """Parameter names in order, for positional paramstyles (SQLite's ``?``); None for named ones."""
    defaults: dict[str, Any]
    """The values the statement itself carries (a literal ``deliveries + 1``), converted."""
    binds: tuple[tuple[str, Processor], ...]
    """The parameters whose values are converted before sending (aware UTC datetimes, say)."""
    results: tuple[Processor | None, ...]


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    assert isinstance(compiled, SQLCompiler)
    if any(bind.expanding for bind in compiled.binds.values()):
        raise TypeError("a Prepared statement cannot take an expanding (IN list) parameter")
    processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                  for name, bind in compiled.binds.items()}
    defaults = {}
    for name, bind in compiled.binds.items():
        if not bind.required:
            processor = processors.pop(name)
            defaults[name] = bind.effective_value if processor is None else processor(bind.effective_value)
    binds = tuple((name, processor) for name, processor in processors.items() if processor is not None)
    columns = getattr(statement, "exported_columns", None) or ()
    results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
    positional = dialect.paramstyle in ("qmark", "numeric", "format")
    names = tuple(compiled.positiontup or ()) if positional else None
    return _Compiled(compiled.string, names, defaults, binds, results)


class Prepared:
    """One statement, compiled on first use per dialect; ``execute`` runs it, ``rows`` fetches converted rows."""

    def __init__(self, build: Build | Executable) -> None:
        self._build = build
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            statement = self._build(dialect.name) if callable(self._build) else self._build
            compiled = self._compiled[dialect.name] = _compile(statement, dialect)
        return compiled

    def _run(self, bind: Session | Connection, params: Mapping[str, Any]) -> tuple[Sequence[Any], _Compiled]:
        connection = bind.connection() if isinstance(bind, Session) else bind
        if not connection.in_transaction():
            connection.begin()  # what any execute would do (autobegin); a no-op BEGIN under AUTOCOMMIT
        compiled = self._for(connection.dialect)
        if compiled.binds or compiled.defaults:
            params = {**compiled.defaults, **params}
            for name, processor in compiled.binds:
                params[name] = processor(params[name])
        values = tuple(params[name] for name in compiled.names) if compiled.names is not None else dict(params)
        cursor = connection.connection.cursor()
        try:
            connection._cursor_execute(cursor, compiled.sql, values)  # private, stable since 1.x: see the docstring
            rows = cursor.fetchall() if cursor.description is not None else []
        finally:
            cursor.close()
        return rows, compiled

    def execute(self, bind: Session | Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement and return its rows as sent; for columns needing no conversion (ids, counts, text)."""
        rows, compiled = self._run(bind, params)
        if any(compiled.results):
            raise TypeError("this statement's results need converting: fetch them with rows()")
        return [tuple(row) for row in rows]

    def rows(self, bind: Session | Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement and return its rows with each column converted as Core would."""
        rows, compiled = self._run(bind, params)
        if not any(compiled.results):
            return [tuple(row) for row in rows]
        return [tuple(value if processor is None else processor(value)
                      for processor, value in zip(compiled.results, row, strict=True)) for row in rows]
