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
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
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


_UNCHANGING = (str, int, float, bool, bytes, date, datetime, uuid.UUID, type(None))  # values a binding cannot alter


def _record_binder(columns: Sequence[Column[Any]], dialect: Dialect) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """A record (values in column order) as the driver takes it, each value bound as SQLAlchemy would bind it. A
    value that is the same immutable object as the one bound just before it in its column (a batch's one timestamp)
    is not bound again: only the timestamp and JSON columns have a binding at all, and a batch's rows share the
    timestamp."""
    processors = [(i, column.type.dialect_impl(dialect).bind_processor(dialect)) for i, column in enumerate(columns)]
    steps: list[tuple[int, Callable[[Any], Any]]] = [(i, process) for i, process in processors if process is not None]
    if not steps:
        return lambda record: record
    last: dict[int, tuple[Any, Any]] = {}

    def bind(record: Sequence[Any]) -> Sequence[Any]:
        fields = list(record)
        for i, process in steps:
            value = fields[i]
            before = last.get(i)
            if before is not None and before[0] is value:
                fields[i] = before[1]
                continue
            fields[i] = bound = process(value)
            if isinstance(value, _UNCHANGING):
                last[i] = (value, bound)
        return fields

    return bind


def _binder(
    names: Sequence[str], columns: Sequence[Column[Any]], dialect: Dialect
) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """A row (a mapping) as the driver takes it: its values in column order, bound (``_record_binder``)."""
    values = operator.itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
    bind = _record_binder(columns, dialect)
    return lambda row: bind(values(row))


def _records(
    rows: Iterable[Mapping[str, Any]], names: Sequence[str], columns: Sequence[Column[Any]], dialect: Dialect
) -> Iterator[Sequence[Any]]:
    """The rows as bound records (``_binder``); lazily, row by row."""
    return map(_binder(names, columns, dialect), rows)


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
    await _insert(session, table, None, rows)


async def insert_records(
    session: AsyncSession,
    table: Table,
    names: Sequence[str],
    records: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]],
) -> None:
    """``insert_rows`` for rows given as records, each a sequence of values in the order of ``names``: a batch's
    certificates are made as records, where a mapping per row, made and then read back in column order, cost more
    than the database's work on it (benchmarks/README.md, "Records, not mappings"). As with ``insert_rows``, a row
    must not change once given: on SQLite every row is collected before the statement runs."""
    await _insert(session, table, list(names), records)


async def _insert(session: AsyncSession, table: Table, names: list[str] | None, rows: Any) -> None:
    """The rows, mappings (``names`` None: their keys name the columns) or records in the order of ``names``."""
    iterator: Iterator[Any] | AsyncIterator[Any]
    if isinstance(rows, AsyncIterable):
        iterator = aiter(rows)
        first = await anext(iterator, None)
    else:
        iterator = plain = iter(rows)
        first = next(plain, None)
    if first is None:
        return
    driver = await driver_connection(session)
    if driver is None:
        every = [first, *([row async for row in iterator] if isinstance(iterator, AsyncIterator) else iterator)]
        if names is not None:
            every = [dict(zip(names, record, strict=True)) for record in every]
        await session.execute(insert(table), every)
        return
    columns = names if names is not None else list(first)
    dialect = session.get_bind().dialect
    bind: Callable[[Any], Sequence[Any]] = (
        _record_binder(_columns(table, columns), dialect)
        if names is not None
        else _binder(columns, _columns(table, columns), dialect)
    )
    if isinstance(iterator, AsyncIterator):
        await _copy(driver, table, columns, _bound_async(_chained(first, iterator), bind))
    else:
        await _copy(driver, table, columns, map(bind, itertools.chain((first,), iterator)))


async def _chained(first: _T, rest: AsyncIterator[_T]) -> AsyncIterator[_T]:
    yield first
    async for item in rest:
        yield item


async def _bound_async(rows: AsyncIterator[Any], bind: Callable[[Any], Sequence[Any]]) -> AsyncIterator[Sequence[Any]]:
    async for row in rows:
        yield bind(row)


async def _copy(
    driver: Any, table: Table, names: list[str], records: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]]
) -> None:
    try:
        await driver.copy_records_to_table(table.name, records=records, columns=names, schema_name=table.schema)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _integrity_error(f"COPY {table.name}", exc) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _database_error(f"COPY {table.name}", exc) from exc


async def insert_missing(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    index_elements: Sequence[str],
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """INSERT … ON CONFLICT (index_elements) DO NOTHING for every row, in order; the columns are the rows' keys.

    PostgreSQL: one ``INSERT … SELECT * FROM unnest($1::type[], …)`` on the driver connection, one array per column;
    with ``returning``, the rows it inserted, as tuples of those columns (rows already there are not returned).
    SQLite: one cached statement, executemany; it returns nothing, so a caller looks up every row it did not get back.
    """
    if not rows:
        return []
    driver = await driver_connection(session)
    if driver is None:
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
        await session.execute(statement, list(rows))
        return []
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
    if returning:
        sql += f" RETURNING {', '.join(quote(table.c[name].name) for name in returning)}"
    try:
        inserted = await driver.fetch(sql, *arrays)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _integrity_error(sql, exc) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _database_error(sql, exc) from exc
    return [tuple(record) for record in inserted]


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
