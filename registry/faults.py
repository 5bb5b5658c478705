"""Database faults: which errors mean the database is out of reach for a moment — answered 503 with ``Retry-After``,
never 500 — and which of them lost the connection, so that an idempotent read may run once more on a fresh one.

The one place that knows the driver's and the pool's exception classes. Seen under ``pg_terminate_backend`` and a
restart of PostgreSQL: asyncpg's ``ConnectionDoesNotExistError`` / ``AdminShutdownError`` / ``InterfaceError``
("connection is closed"), its ``InternalClientError`` ("cannot switch to state 12; another operation (2) is in
progress": the server's goodbye arrived while the connection sat idle, and the socket is not yet seen closed), plain
``ConnectionRefusedError`` while the server is down and ``CannotConnectNowError`` while it starts; SQLAlchemy wraps
the driver's errors in ``DBAPIError`` and raises its own ``TimeoutError`` when its pool has no connection to give
(the verification read pool says so itself: ``registry.verification.readpool``). A deadlock (40P01) or a
serialization failure (40001) rolled the whole transaction back: 503 too, so that the client sends it again. So did a
wait for a lock other work holds that outlived its bound (PostgreSQL's ``lock_timeout``, 55P03, which
``registry.db.bound_commands`` sets below the statement bound; SQLite's busy timeout, SQLITE_BUSY): the database is
well and busy — a large batch holds the body's issuance turn and the logs' locks to its commit — and is said to be.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TypeVar

import asyncpg
from sqlalchemy import exc as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.errors import ServiceUnavailable
from registry.i18n import _

T = TypeVar("T")


class Fault(StrEnum):
    connection_lost = "connection_lost"  # the connection died under the request: the server restarted or ended it
    unreachable = "unreachable"  # no connection could be opened: the server is down, starting, or refuses us
    busy = "busy"  # no connection free in time: every pooled one is in use, or the server is at max_connections
    conflict = "conflict"  # the server aborted the transaction to untangle it from another (deadlock, serialization)
    locked = "locked"  # a statement waited past its bound for a lock other work holds (a large batch, say)


_LOST = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, e.g. ConnectionDoesNotExistError
    asyncpg.exceptions.AdminShutdownError,  # pg_terminate_backend, or a fast shutdown
    asyncpg.exceptions.CrashShutdownError,  # another backend crashed and the server resets every session
    asyncpg.InternalClientError,  # the connection's protocol state is broken ("cannot switch to state 12")
    ConnectionError,  # asyncpg's "unexpected connection_lost() call"; a reset socket
)
# TimeoutError (asyncio's is the same class): the driver's connect or a statement outlived its timeout, as it does when
# the server hangs (stopped, partitioned: the connection stays open and nothing answers).
_UNREACHABLE = (asyncpg.exceptions.CannotConnectNowError, ConnectionRefusedError, TimeoutError)
_BUSY = (sa.TimeoutError, asyncpg.exceptions.TooManyConnectionsError)
# SQLSTATE 40P01 and 40001: PostgreSQL rolled the whole transaction back, so nothing of it happened and the same
# request sent again is expected to succeed — a moment's contention, not a bug in the request.
_CONFLICT = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
_LOCKED = (asyncpg.exceptions.LockNotAvailableError,)  # SQLSTATE 55P03: lock_timeout (the registry never asks NOWAIT)
_UNREACHABLE_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL})
# Clients wait longer when there is no server to talk to than when a connection merely broke.
RETRY_AFTER_SECONDS = {
    Fault.connection_lost: 1,
    Fault.unreachable: 5,
    Fault.busy: 2,
    Fault.conflict: 1,
    Fault.locked: 5,
}
_DETAIL = {
    Fault.connection_lost: _("the connection to the database was lost; the request's changes were not confirmed"),
    Fault.unreachable: _("the database cannot be reached"),
    Fault.busy: _("every database connection is busy"),
    Fault.conflict: _("the request met a concurrent one in the database and was not applied; send it again"),
    Fault.locked: _(
        "the registry is busy with other work on the same records (such as a large batch) and this request could not "
        "take its turn in time; nothing was changed: send it again"
    ),
}
_LINKS = 8  # how far down an exception's causes to look: SQLAlchemy's wrapper, the adapter's, the driver's


def database_fault(error: BaseException) -> Fault | None:
    """What kind of database fault ``error`` is (looking through the errors it wraps), or None when it is not one."""
    seen: BaseException | None = error
    for _link in range(_LINKS):
        if seen is None:
            return None
        if isinstance(seen, sa.DBAPIError) and seen.connection_invalidated:
            return Fault.connection_lost
        if isinstance(seen, asyncpg.InterfaceError) and "connection is closed" in str(seen):
            return Fault.connection_lost
        if isinstance(seen, _UNREACHABLE):
            return Fault.unreachable
        if isinstance(seen, _LOST):
            return Fault.connection_lost
        if isinstance(seen, _BUSY):
            return Fault.busy
        if isinstance(seen, _CONFLICT):
            return Fault.conflict
        if isinstance(seen, _LOCKED) or _sqlite_busy(seen):
            return Fault.locked
        if isinstance(seen, OSError) and seen.errno in _UNREACHABLE_ERRNOS:
            return Fault.unreachable
        seen = seen.__cause__ or seen.__context__
    return None


def refused_startup_parameter(error: BaseException) -> bool:
    """Whether ``error`` (or an error it wraps) is a server refusing a setting sent when connecting: PgBouncer refuses
    every startup parameter it does not know ("unsupported startup parameter: lock_timeout"; ``options`` too, in 1.18)
    unless its ``ignore_startup_parameters`` lists it."""
    seen: BaseException | None = error
    for _link in range(_LINKS):
        if seen is None:
            return False
        if isinstance(seen, asyncpg.exceptions.ProtocolViolationError) and "startup parameter" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _sqlite_busy(error: BaseException) -> bool:
    """SQLite's "database is locked": a writer waited past ``busy_timeout`` for the lock another connection holds."""
    return isinstance(error, sqlite3.OperationalError) and error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


def unavailable(fault: Fault) -> ServiceUnavailable:
    """The 503 a fault is answered with."""
    return ServiceUnavailable(_DETAIL[fault], retry_after=RETRY_AFTER_SECONDS[fault])


class Reads:
    """``await reads(work)``: ``work(session)`` in a transaction of its own, run once more on a fresh connection when
    the first attempt lost its connection (SQLAlchemy has thrown the broken one away, with every older one, by then).
    Only for work that changes nothing: running it twice answers the same question twice. A write whose connection
    died is not retried here; it answers 503, and its client retries with the same Idempotency-Key."""

    __slots__ = ("_sessions",)

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __call__(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        try:
            return await self._run(work)
        except Exception as error:
            if database_fault(error) is not Fault.connection_lost:
                raise
        return await self._run(work)

    async def _run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self._sessions() as session, session.begin():
            return await work(session)
