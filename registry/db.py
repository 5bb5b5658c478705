"""The database: async engines for SQLite (aiosqlite) and PostgreSQL (asyncpg), column types shared by the models."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from registry.bulk import is_unique_violation
from registry.faults import Fault, database_fault

# Stable constraint names, so Alembic migrations can refer to them on both backends.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata
# On PostgreSQL (``bound_commands``): a wait for a lock ends at this share of the statement bound, early enough to be
# told from a hung server (registry.faults: Fault.locked, answered 503 "busy" with Retry-After).
LOCK_WAIT_SHARE = 0.8


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored and returned in UTC on both backends (SQLite would otherwise hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


MAX_ROW_ID = 2**31 - 1  # an integer id column holds 32 bits: a larger id names no row, and must not reach the driver


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


# JSON columns (audit details, scopes, level lists) written and read with orjson rather than the standard library's
# json: the audit details of a 10,000-row batch took 40 ms to encode. The text stored is compact and UTF-8 (the
# standard library wrote ", " and ASCII escapes); the values read back are the same.
_JSON_CODEC: dict[str, Any] = {"json_serializer": json_text, "json_deserializer": orjson.loads}


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str,
    *,
    read_only: bool = False,
    pool_timeout: float = 30,
    command_timeout: float | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """``pool_timeout``: how long a request waits for a free pooled connection before it is answered 503.
    ``command_timeout`` (PostgreSQL): see ``bound_commands``; None leaves connecting and statements unbounded, as
    migrations and the command line need (an index built over a large table may take minutes)."""
    if is_sqlite(url):
        if make_url(url).database not in (None, "", ":memory:"):  # in memory: one shared connection, no queue
            kwargs.setdefault("pool_timeout", pool_timeout)
        return _create_sqlite_engine(url, **kwargs)
    # No pool_pre_ping: with asyncpg it is BEGIN, a ping and ROLLBACK on every checkout (1.5-1.7x a one-row read,
    # benchmarks/pool_checks.py). A connection the server closed while pooled is known closed to the driver without
    # asking (_discard_closed); one that dies under a request is invalidated with every older one
    # (_treat_broken_as_lost), and idempotent reads run once more on a fresh one (registry.faults.Reads, the
    # verification reader and read pool).
    options: dict[str, Any] = {
        **_JSON_CODEC,
        "pool_size": 10,
        "max_overflow": 10,
        "pool_recycle": 1800,
        "pool_timeout": pool_timeout,
        "hide_parameters": True,
    }
    if read_only:
        options["execution_options"] = {"postgresql_readonly": True}
    options.update(kwargs)
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    event.listen(engine.sync_engine, "handle_error", _treat_broken_as_lost)
    if command_timeout is not None:
        bound_commands(engine, command_timeout)
    return engine


def bound_commands(engine: AsyncEngine, seconds: float) -> None:
    """Connections ``engine`` opens from now on give up opening, and each statement on them gives up, after
    ``seconds``: a server that stopped answering (SIGSTOP, a partition, a frozen VM) keeps the TCP connection open and
    would hold the request as long as the outage. asyncpg raises TimeoutError, a fault (registry.faults) answered 503,
    and the connection is thrown away (_treat_broken_as_lost). Nothing on SQLite, whose driver takes no such options.

    That clock cannot tell a dead server from a statement queued behind a lock another transaction holds (a batch of
    thousands of rows holds the body's issuance turn, the audit chain's and the log's to its commit): the server's own
    ``lock_timeout`` ends such a wait first, at ``LOCK_WAIT_SHARE`` of ``seconds``, and the request is answered 503
    "busy" with ``Retry-After`` (``registry.faults``, ``Fault.locked``), not "the database cannot be reached"."""
    if engine.dialect.driver != "asyncpg":
        return
    lock_wait_ms = str(max(1, round(seconds * LOCK_WAIT_SHARE * 1000)))

    @event.listens_for(engine.sync_engine, "do_connect")
    def _bounded(_dialect: Dialect, _record: ConnectionPoolEntry, _cargs: Any, cparams: dict[str, Any]) -> None:
        cparams.setdefault("timeout", seconds)
        cparams.setdefault("command_timeout", seconds)
        cparams["server_settings"] = {"lock_timeout": lock_wait_ms, **cparams.get("server_settings", {})}


def _discard_closed(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
    # Raising DisconnectionError makes the pool throw this one away and hand out another (or open a fresh one).
    if record.driver_connection is not None and record.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _treat_broken_as_lost(context: ExceptionContext) -> None:
    # asyncpg may report a broken connection before it notices the socket closed ("cannot switch to state 12");
    # SQLAlchemy would then pool it again. As a disconnect it is thrown away, with every connection opened before it.
    if not context.is_disconnect and database_fault(context.original_exception) is Fault.connection_lost:
        context.is_disconnect = True


def _create_sqlite_engine(url: str, **kwargs: Any) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        # A folder it creates is its owner's alone: the file holds verification tokens and names in clear.
        Path(database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # hide_parameters: SQL errors and engine logs must never carry bound values (identity numbers, secrets).
    engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **{**_JSON_CODEC, **kwargs})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # single-statement reads (public verification) take no lock at all
        # IMMEDIATE takes the write lock up front: two requests can never read the same audit-chain head and both
        # append to it, and a writer never fails half-way with "database is locked".
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits when the block succeeds, rolls back when it raises."""
    async with factory() as session, session.begin():
        yield session


async def add_unless_taken(session: AsyncSession, row: SQLModel) -> bool:
    """``row`` inserted (True); or False, and the caller's transaction still usable, when a unique index refused it:
    another transaction made the same thing (a code, say) after the caller looked for it and committed first — two
    admins registering one body at once. The caller then looks again, sees the winner, and refuses as it would have
    had the winner come first (409 naming the field), never 500. (PostgreSQL holds the second insert until the first
    transaction ends; on SQLite writers take turns, so only a row the caller's own check missed gets here.)"""
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        return False
    return True


async def read_one_snapshot(session: AsyncSession) -> None:
    """From here to the end of its transaction, ``session`` reads one snapshot of the database, whatever commits
    meanwhile: for a check that compares tables (the audit chain, the transparency log, the certificates' statuses
    and histories) while the registry serves. Each statement of a READ COMMITTED transaction sees what committed
    before it, so a status change committing between two reads looked like a leaf removed or a status rolled back.
    PostgreSQL: REPEATABLE READ, read only; call it before the transaction's first statement. SQLite: nothing to do,
    the transaction holds the write lock (BEGIN IMMEDIATE) and nothing commits meanwhile."""
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True})
