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
from sqlalchemy.engine import Connection, Dialect, ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from registry.bulk import is_unique_violation
from registry.faults import Fault, database_fault, refused_startup_parameter

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
    lock_timeout: float | None = None,
    application_name: str | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """``pool_timeout``: how long a request waits for a free pooled connection before it is answered 503.
    ``command_timeout`` (PostgreSQL): see ``bound_commands``; None leaves connecting and statements unbounded, as
    migrations and the command line need (an index built over a large table may take minutes). ``lock_timeout``: see
    ``bound_lock_waits`` (on SQLite, the busy timeout; None: 30 s there, unbounded on PostgreSQL).
    ``application_name`` (PostgreSQL): what its sessions are called in ``pg_stat_activity``, so that one holding a
    lock another waits for can be named (``registry.migrate``)."""
    if is_sqlite(url):
        if make_url(url).database not in (None, "", ":memory:"):  # in memory: one shared connection, no queue
            kwargs.setdefault("pool_timeout", pool_timeout)
        return _create_sqlite_engine(url, busy_seconds=30 if lock_timeout is None else lock_timeout, **kwargs)
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
    if application_name is not None:
        options["connect_args"] = {"server_settings": {"application_name": application_name}}
    options.update(kwargs)
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    event.listen(engine.sync_engine, "handle_error", _treat_broken_as_lost)
    if command_timeout is not None:
        bound_commands(engine, command_timeout)
    if lock_timeout is not None:
        bound_lock_waits(engine, lock_timeout)
    return engine


def bound_lock_waits(engine: AsyncEngine, seconds: float) -> None:
    """Each transaction of ``engine`` gives up waiting for a lock after ``seconds`` (PostgreSQL's ``lock_timeout``,
    55P03: ``Fault.locked``), or sooner when the database or role sets a shorter one; nothing else is bounded, so a
    statement that is merely slow runs to its end (``registry import``: a chunk behind a ``LOCK TABLE`` or a long
    migration stops and says so; a chunk of thousands of rows on a loaded server goes on). Set with ``SET LOCAL`` as
    each transaction begins: right behind PgBouncer in every pool mode, one round trip per transaction."""
    if engine.dialect.driver != "asyncpg":
        return
    ms = max(1, round(seconds * 1000))
    # The database's or role's own lock_timeout when it is shorter (and not 0, unbounded), else ours; ``ms`` is ours.
    shorter_or_ours = (
        "SELECT set_config('lock_timeout', "  # noqa: S608  # nosec B608 - ms is an int made here, never input
        f"CASE WHEN setting::bigint BETWEEN 1 AND {ms} THEN setting ELSE '{ms}' END, true) "
        "FROM pg_settings WHERE name = 'lock_timeout'"
    )

    def begin(connection: Connection) -> None:
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql(shorter_or_ours)

    event.listen(engine.sync_engine, "begin", begin)


def bound_commands(engine: AsyncEngine, seconds: float) -> None:
    """Connections ``engine`` opens from now on give up opening, and each statement on them gives up, after
    ``seconds``: a server that stopped answering (SIGSTOP, a partition, a frozen VM) keeps the TCP connection open and
    would hold the request as long as the outage. asyncpg raises TimeoutError, a fault (registry.faults) answered 503,
    and the connection is thrown away (_treat_broken_as_lost). Nothing on SQLite, whose driver takes no such options.

    That clock cannot tell a dead server from a statement queued behind a lock another transaction holds (a batch of
    thousands of rows holds the body's issuance turn, the audit chain's and the log's to its commit): the server's own
    ``lock_timeout`` ends such a wait first, at ``LOCK_WAIT_SHARE`` of ``seconds``, and the request is answered 503
    "busy" with ``Retry-After`` (``registry.faults``, ``Fault.locked``), not "the database cannot be reached".

    ``lock_timeout`` is sent when connecting, which costs nothing (``_LockWaitBound``)."""
    if engine.dialect.driver != "asyncpg":
        return
    bound = _LockWaitBound(seconds)
    event.listen(engine.sync_engine, "do_connect", bound.connect)
    event.listen(engine.sync_engine, "begin", bound.begin)


class _LockWaitBound:
    """``lock_timeout`` on every transaction of one engine. Sent when connecting, it costs nothing; but PgBouncer
    refuses startup parameters it does not know ("unsupported startup parameter: lock_timeout"; ``options`` too, in
    1.18), and one told to ignore it (``ignore_startup_parameters``) connects without it. Either is found on the
    engine's first connection; from then on it connects without the parameter and each transaction begins with
    ``SET LOCAL lock_timeout`` — one round trip more per transaction, right in every pool mode (a session-wide SET
    would stay on whichever server connection a transaction-mode PgBouncer lent, and never reach the next one)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock_wait_ms = max(1, round(seconds * LOCK_WAIT_SHARE * 1000))
        self.checked = False  # whether the server was seen to apply the parameter sent when connecting
        self.per_transaction = False

    def connect(self, dialect: Dialect, _record: ConnectionPoolEntry, cargs: Any, cparams: dict[str, Any]) -> Any:
        cparams.setdefault("timeout", self.seconds)
        cparams.setdefault("command_timeout", self.seconds)
        if self.per_transaction:
            return None  # SQLAlchemy connects with cparams, without lock_timeout
        settings = {"lock_timeout": str(self.lock_wait_ms), **cparams.get("server_settings", {})}
        try:
            connection = dialect.connect(*cargs, **{**cparams, "server_settings": settings})
        except Exception as error:
            if not refused_startup_parameter(error):
                raise
            self.per_transaction = True
            return None
        if not self.checked:
            try:
                self.per_transaction = _setting(connection, "lock_timeout") != str(self.lock_wait_ms)
            except BaseException:
                connection.terminate()  # not handed to the pool: nothing else would close it
                raise
            self.checked = True
        return connection

    def begin(self, connection: Connection) -> None:
        if self.per_transaction and connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {self.lock_wait_ms}")


def _setting(dbapi_connection: Any, name: str) -> str:
    """A server setting as the session sees it (in its base unit), read on a connection not yet handed out."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT setting FROM pg_settings WHERE name = $1", (name,))
        setting: str = cursor.fetchone()[0]
    finally:
        cursor.close()
        dbapi_connection.rollback()
    return setting


def _discard_closed(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
    # Raising DisconnectionError makes the pool throw this one away and hand out another (or open a fresh one).
    if record.driver_connection is not None and record.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _treat_broken_as_lost(context: ExceptionContext) -> None:
    # asyncpg may report a broken connection before it notices the socket closed ("cannot switch to state 12");
    # SQLAlchemy would then pool it again. As a disconnect it is thrown away, with every connection opened before it.
    if not context.is_disconnect and database_fault(context.original_exception) is Fault.connection_lost:
        context.is_disconnect = True


def _create_sqlite_engine(url: str, *, busy_seconds: float = 30, **kwargs: Any) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        # A folder it creates is its owner's alone: the file holds verification tokens and names in clear.
        Path(database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # hide_parameters: SQL errors and engine logs must never carry bound values (identity numbers, secrets).
    connect_args = {"timeout": busy_seconds}
    engine = create_async_engine(url, connect_args=connect_args, hide_parameters=True, **{**_JSON_CODEC, **kwargs})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={max(1, round(busy_seconds * 1000))}")
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
