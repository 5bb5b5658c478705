"""Review of 249038c: the replica's engine is made with a statement bound (api.app._read_route), so bound_commands
now gives its connections PostgreSQL's lock_timeout too. A verification read that waits on the replica for a lock —
on a hot standby, an ACCESS EXCLUSIVE lock replayed from the primary (a migration's ALTER TABLE, autovacuum truncating
a table's empty tail) — used to run out the replica's bound (TimeoutError, "unreachable") and run once more on the
primary. It now ends as Fault.locked, which ReadRoute.fallback does not count as the replica failing: the read is
answered 503 "busy with other work on the same records", though the primary would answer it.

The replica here is a second engine on the test's own database, made as _read_route makes it; the lock is held from
another connection for a little longer than the replica's bound, then let go, so the primary can answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from registry.config import Settings
from registry.db import create_engine, session_factory
from registry.verification.reading import Reader
from registry.verification.replica import ReadRoute, ReadTarget, ReplicaState

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])  # a replica is PostgreSQL's

REPLICA_TIMEOUT_SECONDS = 1.0  # REGISTRY_READ_REPLICA_TIMEOUT_SECONDS' default
HELD_SECONDS = 2.5


@pytest.fixture
async def route(settings: Settings, app: FastAPI) -> AsyncIterator[ReadRoute]:
    engine = app.state.engine
    replica_engine = create_engine(settings.database_url, read_only=True, command_timeout=REPLICA_TIMEOUT_SECONDS)
    primary = ReadTarget("primary", engine, None, session_factory(engine))
    replica = ReadTarget("replica", replica_engine, None, session_factory(replica_engine))
    routed = ReadRoute(primary, replica, timeout=REPLICA_TIMEOUT_SECONDS, check_every=3600)
    routed.state = ReplicaState.ok  # measured fresh: reads go to the replica
    routed._checked_at = routed._clock()
    try:
        yield routed
    finally:
        await replica_engine.dispose()


async def test_a_read_waiting_for_a_lock_on_the_replica_is_answered_by_the_primary(
    settings: Settings, route: ReadRoute
) -> None:
    dsn = make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    other = await asyncpg.connect(dsn)
    locked = asyncio.Event()

    async def hold() -> None:
        async with other.transaction():
            await other.execute("LOCK TABLE issuers IN ACCESS EXCLUSIVE MODE")
            locked.set()
            await asyncio.sleep(HELD_SECONDS)

    holder = asyncio.ensure_future(hold())
    try:
        await locked.wait()
        async with Reader(route) as reader:
            result = await reader.execute(text("SELECT count(*) FROM issuers"))
            assert result.scalar_one() >= 0
    finally:
        await holder
        await other.close()
