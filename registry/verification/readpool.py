"""A driver-level asyncpg pool for the public read path on PostgreSQL.

Public verification is one indexed query per scan. Through SQLAlchemy that query costs about twice its raw asyncpg
time (pool checkout, the greenlet bridge, result processing), and it is the registry's hottest path, so it runs on
asyncpg directly: one prepared statement per connection (asyncpg's statement cache), rows read by column name. Every
other query, including the cache fills that verification needs now and then, stays on SQLAlchemy.

The pool opens on first use, in the event loop that uses it, and its sessions are read-only
(``default_transaction_read_only``): nothing on this path can write, whichever database the URL points at — except
behind a PgBouncer, which refuses that startup parameter: the pool then opens without it (its one query is a SELECT).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from registry.faults import Fault, database_fault, refused_startup_parameter, unavailable

# Query options that SQLAlchemy's asyncpg dialect consumes; asyncpg would send them to the server as settings.
_SQLALCHEMY_ONLY = frozenset({"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"})
_APPLICATION = {"application_name": "talent-registry-verify"}  # PgBouncer knows this one
_READ_ONLY = {"default_transaction_read_only": "on"}  # and refuses this one, unless told to ignore it


def driver_dsn(url: str) -> str:
    """The asyncpg DSN for a SQLAlchemy ``postgresql+asyncpg://`` URL (password kept: it is used, never logged)."""
    parsed = make_url(url)
    query = {k: v for k, v in parsed.query.items() if k not in _SQLALCHEMY_ONLY}
    return parsed.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: asyncpg's default runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release — a second round trip per scan, on top of the query. This pool runs single read statements
    outside transactions and never locks, listens, declares cursors or sets anything, so none of that state can exist;
    an open transaction, should one ever be left, is still rolled back by asyncpg before this is called."""


class ReadPool:
    """``acquire_timeout``: how long a scan waits for a free connection (or for a new one to open) before it is
    answered 503. ``connect_timeout`` and ``command_timeout``, when given, bound opening a connection and running a
    read on it (a replica's pool: a replica that does not answer sends reads to the primary, registry.verification
    .replica)."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int,
        max_size: int,
        acquire_timeout: float = 30,
        connect_timeout: float | None = None,
        command_timeout: float | None = None,
    ) -> None:
        self._dsn = driver_dsn(url)
        self._min_size = min_size
        self._max_size = max_size
        self._acquire_timeout = acquire_timeout
        self._connect_timeout = connect_timeout or acquire_timeout
        self._command_timeout = command_timeout
        self._in_use = 0
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    async def _open(self) -> asyncpg.Pool:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                try:
                    self._pool = await self._create({**_APPLICATION, **_READ_ONLY})
                except Exception as error:
                    if not refused_startup_parameter(error):
                        raise
                    # A PgBouncer in front: it refuses startup parameters it does not know. This pool runs one
                    # fixed SELECT, so it does without read-only sessions rather than leave every scan a 503.
                    self._pool = await self._create(_APPLICATION)
            return self._pool

    async def _create(self, settings: dict[str, str]) -> asyncpg.Pool:
        return await asyncpg.create_pool(
            self._dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            reset=_keep_session,
            timeout=self._connect_timeout,  # to connect: a server that does not answer is a 503 too
            command_timeout=self._command_timeout,
            server_settings=settings,
        )

    async def fetchrow(self, query: str, *args: Any) -> Mapping[str, Any] | None:
        """One read; run once more on another connection when the first broke under it (a read changes nothing)."""
        retried = False
        while True:
            pool = self._pool or await self._open()
            if self._in_use < self._max_size:
                # A connection is free: nothing to wait for, so no timer. One on every scan showed in the driver-side
                # CPU of this hot path (readpool/asyncpg-pool in benchmarks/pool_checks.py): set only when needed.
                connection = await pool.acquire()
            else:
                try:
                    async with asyncio.timeout(self._acquire_timeout):
                        connection = await pool.acquire()
                except TimeoutError:
                    raise unavailable(Fault.busy) from None
            self._in_use += 1
            try:
                row: Mapping[str, Any] | None = await connection.fetchrow(query, *args)
                return row
            except Exception as error:
                fault = database_fault(error)
                if fault is Fault.unreachable:
                    # The read outlived command_timeout: asyncpg would hold the connection back until the server
                    # answers its cancel request, and a server that does not answer never will. Dropped instead.
                    with contextlib.suppress(asyncpg.InterfaceError):
                        connection.terminate()
                if retried or fault is not Fault.connection_lost:
                    raise
                retried = True
                # Broken, maybe not yet seen closed ("cannot switch to state 12"): never hand it out again. The
                # others were most likely opened to the same server and met the same end (a restart, a storm of
                # pg_terminate_backend): each is replaced on its next acquire, as SQLAlchemy does with its pool.
                with contextlib.suppress(asyncpg.InterfaceError):  # the driver may have closed and released it already
                    connection.terminate()
                await pool.expire_connections()
            finally:
                self._in_use -= 1
                await pool.release(connection)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
