"""A driver-level asyncpg pool for the public read path on PostgreSQL.

Public verification is one indexed query per scan. Through SQLAlchemy that query costs about twice its raw asyncpg
time (pool checkout, the greenlet bridge, result processing), and it is the registry's hottest path, so it runs on
asyncpg directly: one prepared statement per connection (asyncpg's statement cache), rows read by column name. Every
other query, including the cache fills that verification needs now and then, stays on SQLAlchemy.

The pool opens on first use, in the event loop that uses it, and its sessions are read-only
(``default_transaction_read_only``): nothing on this path can write, whichever database the URL points at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

# Query options that SQLAlchemy's asyncpg dialect consumes; asyncpg would send them to the server as settings.
_SQLALCHEMY_ONLY = frozenset({"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"})


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
    def __init__(self, url: str, *, min_size: int, max_size: int) -> None:
        self._dsn = driver_dsn(url)
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    async def _open(self) -> asyncpg.Pool:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    reset=_keep_session,
                    server_settings={
                        "default_transaction_read_only": "on",
                        "application_name": "talent-registry-verify",
                    },
                )
            return self._pool

    async def fetchrow(self, query: str, *args: Any) -> Mapping[str, Any] | None:
        pool = self._pool or await self._open()
        row: Mapping[str, Any] | None = await pool.fetchrow(query, *args)
        return row

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
