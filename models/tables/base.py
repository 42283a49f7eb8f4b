"""The declarative base every table shares: constraint naming, column types, timestamps.

Constraint names follow one convention so migrations can drop and alter them by name on every
engine. Timestamps are timezone-aware UTC on both PostgreSQL and SQLite; amounts are integer minor
units (``BigInteger``); percents are exact decimals, never floats.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Dialect, Integer, MetaData, Numeric, String
from sqlalchemy.orm import DeclarativeBase, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Every constraint and index gets a predictable name (Alembic needs names to alter them)."""

BIGINT_ID = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit ids on PostgreSQL; plain ``INTEGER`` on SQLite, the only type that aliases ``rowid`` and
so autoincrements there."""

PERCENT_PRECISION = 7
PERCENT_SCALE = 4


def utcnow() -> datetime:
    """The default of every ``created_at``-like column: an aware UTC instant."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that always binds and returns aware UTC datetimes.

    SQLite has no time zone type: SQLAlchemy stores the wall clock and drops the offset, so a
    non-UTC value would be silently shifted and values would come back naive. Converting to UTC on
    the way in and tagging UTC on the way out gives both engines the same behaviour. Naive values
    are refused: their meaning depends on the machine.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Percent(TypeDecorator[Decimal]):
    """``NUMERIC(7, 4)`` returned as an exact ``Decimal`` on both engines.

    SQLite has no decimal type and hands back floats; the value is re-quantized from its shortest
    ``repr`` to the column's scale, which is exact for every value the column can hold.
    """

    impl = Numeric(PERCENT_PRECISION, PERCENT_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(PERCENT_PRECISION, PERCENT_SCALE, asdecimal=False))
        return dialect.type_descriptor(self.impl_instance)

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-PERCENT_SCALE))


IntPK = Annotated[int, mapped_column(BIGINT_ID, primary_key=True, autoincrement=True)]
"""A surrogate integer primary key that autoincrements on PostgreSQL and SQLite."""

Created = Annotated[datetime, mapped_column(UTCDateTime(), default=utcnow)]
"""An insert timestamp defaulting to now (UTC); callers with an injected clock pass their own."""


class Base(DeclarativeBase):
    """The declarative base: shared metadata with the naming convention and the type map."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - read by SQLAlchemy at class creation
        int: BigInteger(),
        str: String(),
        bool: Boolean(),
        date: Date(),
        datetime: UTCDateTime(),
        Decimal: Percent(),
    }
