"""Bulk writes for batch issuance: PostgreSQL's own driver inside the session's transaction, executemany elsewhere.

Through SQLAlchemy, 10,000 rows cost a multi-row INSERT compiled for every 1,000 rows and every value passed through
the statement machinery, which at batch sizes takes longer than making the certificates. On PostgreSQL these helpers
give the rows to asyncpg instead (``COPY``, or one array statement), on the connection and in the transaction the
session already holds. Each value first goes through the bind processor SQLAlchemy would have applied to it (UTC
timestamps, JSON text), so the stored data is the same either way. On SQLite they execute one cached statement with
all the rows as parameters. The look-up helpers at the end ask about many values in one statement the same way.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Column, String, Table, any_, bindparam, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine
from sqlmodel import SQLModel

_T = TypeVar("_T")


async def driver_connection(session: AsyncSession) -> Any | None:
    """The asyncpg connection under the session's transaction, or None when the database is not PostgreSQL.

    SQLAlchemy's asyncpg adapter begins the transaction with the first statement, so a session that has run none yet
    runs a trivial one first: a write made on the driver outside the transaction would commit on its own.
    """
    if not is_postgres(session):
        return None
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is not None and not driver.is_in_transaction():
        await connection.execute(text("SELECT 1"))
    if driver is None or not driver.is_in_transaction():
        raise RuntimeError("bulk writes must run inside the session's transaction")
    return driver


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a SQLModel table model."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def _columns(table: Table, names: Iterable[str]) -> list[Column[Any]]:
    columns = [table.c[name] for name in names]
    given = {column.name for column in columns}
    # A column the rows leave out gets its Python-side default from SQLAlchemy; on the driver it would be NULL (or the
    # server default) instead. No caller leaves one out; should one ever do so, this says it rather than store NULL.
    missing = [c.name for c in table.columns if c.name not in given and c.default is not None]
    if missing:
        raise ValueError(f"rows for {table.name} leave out columns with Python defaults: {', '.join(missing)}")
    return columns


def _binder(
    names: Sequence[str], columns: Sequence[Column[Any]], dialect: Dialect
) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A row as a tuple in column order, each value bound as SQLAlchemy would bind it."""
    values = operator.itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
    processors = [(i, column.type.dialect_impl(dialect).bind_processor(dialect)) for i, column in enumerate(columns)]
    steps: list[tuple[int, Callable[[Any], Any]]] = [(i, process) for i, process in processors if process is not None]
    if not steps:
        return lambda row: tuple(values(row))

    def bind(row: Mapping[str, Any]) -> tuple[Any, ...]:
        fields = list(values(row))
        for i, process in steps:
            fields[i] = process(fields[i])
        return tuple(fields)

    return bind


def _records(
    rows: Iterable[Mapping[str, Any]], names: Sequence[str], columns: Sequence[Column[Any]], dialect: Dialect
) -> Iterator[tuple[Any, ...]]:
    """The rows as bound tuples (``_binder``); lazily, row by row."""
    return map(_binder(names, columns, dialect), rows)


async def _records_async(
    rows: AsyncIterator[Mapping[str, Any]], names: Sequence[str], columns: Sequence[Column[Any]], dialect: Dialect
) -> AsyncIterator[tuple[Any, ...]]:
    bind = _binder(names, columns, dialect)
    async for row in rows:
        yield bind(row)


def _integrity_error(statement: str, exc: Exception) -> IntegrityError:
    """The error SQLAlchemy would have raised for the same constraint violation (no parameters: they hold secrets)."""
    return IntegrityError(statement, None, exc, hide_parameters=True)


def _database_error(statement: str, exc: Exception) -> DBAPIError:
    """Any other driver error as SQLAlchemy would have raised it (a value the column cannot hold as DataError), so
    callers catch one family whichever path wrote; ``registry.faults`` still sees the driver's error (``__cause__``)."""
    kind = DataError if isinstance(exc, asyncpg.DataError) else DBAPIError
    return kind(statement, None, exc, hide_parameters=True)


async def insert_rows(
    session: AsyncSession, table: Table, rows: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]]
) -> None:
    """INSERT every row, in order, in the session's transaction; the columns are the keys of the rows (all alike).

    PostgreSQL: one ``COPY`` on the driver connection, which sends rows as ``rows`` yields them: given a generator
    (or an asynchronous one), the database inserts the first rows while the generator makes the next. Serial ids are
    drawn in row order, as with INSERT, and triggers fire just the same (on PostgreSQL the reference checks of
    migration 0013 run once at the end of the COPY, over all its rows).
    """
    if isinstance(rows, AsyncIterable):
        await _insert_async(session, table, aiter(rows))
        return
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return
    driver = await driver_connection(session)
    if driver is None:
        await session.execute(insert(table), [first, *iterator])
        return
    names = list(first)
    records = _records(itertools.chain((first,), iterator), names, _columns(table, names), session.get_bind().dialect)
    await _copy(driver, table, names, records)


async def _insert_async(session: AsyncSession, table: Table, rows: AsyncIterator[Mapping[str, Any]]) -> None:
    first = await anext(rows, None)
    if first is None:
        return
    driver = await driver_connection(session)
    if driver is None:
        await session.execute(insert(table), [first, *[row async for row in rows]])
        return
    names = list(first)

    async def chained() -> AsyncIterator[Mapping[str, Any]]:
        yield first
        async for row in rows:
            yield row

    records = _records_async(chained(), names, _columns(table, names), session.get_bind().dialect)
    await _copy(driver, table, names, records)


async def _copy(
    driver: Any, table: Table, names: list[str], records: Iterable[tuple[Any, ...]] | AsyncIterable[tuple[Any, ...]]
) -> None:
    try:
        await driver.copy_records_to_table(table.name, records=records, columns=names, schema_name=table.schema)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _integrity_error(f"COPY {table.name}", exc) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _database_error(f"COPY {table.name}", exc) from exc


async def insert_missing(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]], *, index_elements: Sequence[str]
) -> None:
    """INSERT … ON CONFLICT (index_elements) DO NOTHING for every row, in order; the columns are the rows' keys.

    PostgreSQL: one ``INSERT … SELECT * FROM unnest($1::type[], …)`` on the driver connection, one array per column.
    SQLite: one cached statement, executemany.
    """
    if not rows:
        return
    driver = await driver_connection(session)
    if driver is None:
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
        await session.execute(statement, list(rows))
        return
    names = list(rows[0])
    columns = _columns(table, names)
    dialect = session.get_bind().dialect
    arrays = [list(values) for values in zip(*_records(rows, names, columns, dialect), strict=True)]
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    casts = ", ".join(f"${i}::{column.type.compile(dialect=dialect)}[]" for i, column in enumerate(columns, start=1))
    # Names and types come from the table's metadata, quoted; the values travel as parameters.
    into = f"{target} ({', '.join(quote(name) for name in names)})"
    conflict = ", ".join(quote(name) for name in index_elements)
    sql = f"INSERT INTO {into} SELECT * FROM unnest({casts}) ON CONFLICT ({conflict}) DO NOTHING"  # noqa: S608  # nosec B608
    try:
        await driver.execute(sql, *arrays)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _integrity_error(sql, exc) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _database_error(sql, exc) from exc


# --- look-ups of many values at once ------------------------------------------------------------------------------

_IN_CHUNK = 1_000  # values per IN (...) look-up on SQLite: well inside its parameter limit


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lookup_chunks(items: Sequence[_T], *, postgres: bool) -> list[Sequence[_T]]:
    """PostgreSQL takes a whole batch in one array parameter; elsewhere IN (...) lists stay within parameter limits."""
    if postgres:
        return [items] if items else []
    return [items[start : start + _IN_CHUNK] for start in range(0, len(items), _IN_CHUNK)]


def one_of(column: Any, values: Sequence[Any], *, postgres: bool, element: TypeEngine[Any] | None = None) -> Any:
    """``column = ANY($1::type[])`` on PostgreSQL: one statement whatever the count, compiled once and prepared
    once, where an IN list of n values is a new statement for every n. Elsewhere ``column IN (...)``."""
    if postgres:
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(element or String())))
    return column.in_(values)


def is_unique_violation(error: IntegrityError) -> bool:
    """Whether an IntegrityError is a unique-index clash (a random value drawn twice: retrying helps), as opposed to
    a foreign-key or check failure (a bug: retrying does not)."""
    cause = error.orig
    code = getattr(cause, "pgcode", None) or getattr(cause, "sqlstate", None)
    return code == "23505" or "UNIQUE constraint failed" in str(cause)
