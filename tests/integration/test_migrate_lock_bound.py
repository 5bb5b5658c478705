"""A migration kept waiting for a lock another session holds gives up after ``REGISTRY_MIGRATE_LOCK_TIMEOUT_SECONDS``:
`registry migrate` (and `registry serve`, before it listens) exits 4 naming the migration under way and the session
holding the lock, with nothing migrated; once that session has ended its transaction, migrating again succeeds. It
used to wait as long as the lock was held, without a word, while on PostgreSQL every later reader of the table queued
behind the waiting ALTER TABLE (the service stalled with it).

The database is a fresh one taken down to revision 0017: the next migration, 0018, alters ``status_lists`` (ADD
COLUMN, which needs ACCESS EXCLUSIVE), and the other session has read that table in a transaction it keeps open (ACCESS
SHARE: a report, a psql session left idle in transaction). The newer migrations change rows only, which such a reader
does not hold up. The commands run as an operator runs them, in a process of their own; one still running after
``WITHIN`` seconds has hung (it is killed, and the test fails).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from registry.db import create_engine
from registry.migrate import MIGRATE_LOCK, downgrade
from tests.conftest import _admin_dsn
from tests.integration.cli_support import REGISTRY, registry_env
from tests.integration.server_support import free_port
from tests.integration.test_import_language import CHINESE, ENGLISH

BEFORE = "20261211_0017"  # the revision the database is taken down to
EARLIER = "20261210_0016"  # one further down: 0017 (api_clients.tokens_not_before) comes before the blocked one
BLOCKED = "20261212_0018"  # the next one: ALTER TABLE status_lists
HEAD = "20261217_0023"
BOUND = {"REGISTRY_MIGRATE_LOCK_TIMEOUT_SECONDS": "1"}
WITHIN = 60  # seconds: far past the bound; a command still running then waits for the lock without end
REPORT = "monthly-report"  # the application name of the session holding the lock
STUCK = "hung-starter"  # the application name of a session holding the migrations' turn
POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"])


async def _registry(*args: str, database_url: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `registry <args>`; one still running after ``WITHIN`` seconds is killed."""
    process = await asyncio.create_subprocess_exec(
        *REGISTRY,
        *args,
        env={**os.environ, **registry_env(database_url), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=WITHIN)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"registry {' '.join(args)} was still waiting for the lock after {WITHIN} s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _at_revision_before(database_url: str, revision: str = BEFORE) -> None:
    engine = create_engine(database_url)
    try:
        await downgrade(engine, revision)
    finally:
        await engine.dispose()
    assert await _revision(database_url) == revision


async def _revision(database_url: str) -> str:
    connection = await asyncpg.connect(_admin_dsn(database_url))
    try:
        revision: str = await connection.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await connection.close()
    return revision


@asynccontextmanager
async def _reader_left_open(database_url: str) -> AsyncIterator[int]:
    """A session that read ``status_lists`` in a transaction it keeps open (ACCESS SHARE) until the block ends, then
    commits; yields its pid."""
    connection = await asyncpg.connect(_admin_dsn(database_url), server_settings={"application_name": REPORT})
    try:
        transaction = connection.transaction()
        await transaction.start()
        await connection.fetchval("SELECT count(*) FROM status_lists")
        yield connection.get_server_pid()
        await transaction.commit()
    finally:
        await connection.close()


def _stopped(pid: int) -> str:
    return (
        f"error: cannot migrate: migration {BLOCKED} waited for a lock that another session (pid {pid}, {REPORT}, "
        "idle in transaction) holds, and gave up at the lock timeout; nothing was migrated (this run's changes were "
        "rolled back). Run the migration again once that transaction has ended"
    )


@POSTGRESQL_ONLY
async def test_migrate_behind_an_idle_reader_stops_naming_the_migration_and_the_session_then_succeeds(
    database_url: str,
) -> None:
    await _at_revision_before(database_url)

    async with _reader_left_open(database_url) as pid:
        code, out, err = await _registry("migrate", database_url=database_url, env={**ENGLISH, **BOUND})
        assert code == 4, out + err
        assert err.strip().splitlines()[-1] == _stopped(pid), err
        assert await _revision(database_url) == BEFORE  # rolled back whole: not even 0018's neighbours applied

    code, out, err = await _registry("migrate", database_url=database_url, env={**ENGLISH, **BOUND})

    assert code == 0, out + err
    assert err.strip().splitlines()[-1] == "database is at the latest revision", err
    assert await _revision(database_url) == HEAD


@POSTGRESQL_ONLY
async def test_serve_behind_an_idle_reader_exits_before_listening_and_says_so_in_chinese(database_url: str) -> None:
    await _at_revision_before(database_url)
    port = str(free_port())

    async with _reader_left_open(database_url) as pid:
        code, out, err = await _registry(
            "serve", "--port", port, "--workers", "2", database_url=database_url, env={**CHINESE, **BOUND}
        )
        assert code == 4, out + err
        assert "serving on" not in out + err
        line = err.strip().splitlines()[-1]
        assert line.startswith(f"错误：无法迁移：迁移（{BLOCKED}）在等待另一个会话（pid {pid}, {REPORT}, "), err
        assert line.endswith("请待该事务结束后再次运行迁移"), err
        assert await _revision(database_url) == BEFORE


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_migrate_behind_a_sqlite_writer_stops_at_the_bound_and_says_so(database_url: str) -> None:
    """SQLite: the bound is the busy timeout of the migration's write lock (it was a fixed 30 s, said as a busy
    request: "send it again")."""
    other = sqlite3.connect(str(make_url(database_url).database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        code, out, err = await _registry("migrate", database_url=database_url, env={**ENGLISH, **BOUND})
    finally:
        other.execute("ROLLBACK")
        other.close()

    assert code == 4, out + err
    assert err.strip().splitlines()[-1] == (
        "error: cannot migrate: the migrations waited for a lock that another connection to the database file holds, "
        "and gave up at the lock timeout; nothing was migrated (this run's changes were rolled back). Run the "
        "migration again once that transaction has ended"
    ), err
    code, out, err = await _registry("migrate", database_url=database_url, env={**ENGLISH, **BOUND})
    assert code == 0, out + err


@POSTGRESQL_ONLY
async def test_a_second_migration_waits_for_the_first_however_long_not_only_the_bound(database_url: str) -> None:
    """Two instances migrating at once: the second waits for the first's turn (the advisory lock) past the bound on
    lock waits, since the first's own waits are bounded; it then finds the work done, or does it."""
    await _at_revision_before(database_url)
    first = await asyncpg.connect(_admin_dsn(database_url))
    try:
        transaction = first.transaction()
        await transaction.start()
        await first.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
        second = asyncio.create_task(_registry("migrate", database_url=database_url, env={**ENGLISH, **BOUND}))
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        while not await first.fetchval(waiting):
            assert not second.done(), second.result()
            await asyncio.sleep(0.05)
        await asyncio.sleep(2)  # twice the bound
        assert not second.done(), second.result()
        await transaction.commit()
    finally:
        await first.close()

    code, out, err = await second

    assert code == 0, out + err
    assert await _revision(database_url) == HEAD


@POSTGRESQL_ONLY
async def test_a_later_migration_that_gives_up_takes_the_earlier_ones_of_its_run_with_it(database_url: str) -> None:
    """Two revisions pending before the blocked one's: 0017 adds a column to api_clients, then 0018 waits for the
    reader and gives up; 0017's column and version are gone with it (one transaction), not left half-migrated."""
    await _at_revision_before(database_url, EARLIER)
    column = (
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'api_clients' "
        "AND column_name = 'tokens_not_before'"
    )

    async with _reader_left_open(database_url) as pid:
        code, out, err = await _registry("migrate", database_url=database_url, env={**ENGLISH, **BOUND})
        assert code == 4, out + err
        assert err.strip().splitlines()[-1] == _stopped(pid), err

    assert await _revision(database_url) == EARLIER
    connection = await asyncpg.connect(_admin_dsn(database_url))
    try:
        assert await connection.fetchval(column) == 0
    finally:
        await connection.close()


@POSTGRESQL_ONLY
async def test_a_migration_waiting_for_another_ones_turn_says_whose_then_goes_on(database_url: str) -> None:
    """The wait for another starter's migration (the advisory lock) has no bound; a starter hung while holding it (a
    stopped process, a session left idle in transaction) kept this one waiting without a word. It now says, as it
    begins to wait, which session it waits for and how to end it; once that session ends, it migrates."""
    await _at_revision_before(database_url)
    holder = await asyncpg.connect(_admin_dsn(database_url), server_settings={"application_name": STUCK})
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
        process = await asyncio.create_subprocess_exec(
            *REGISTRY,
            "migrate",
            env={**os.environ, **registry_env(database_url), **ENGLISH, **BOUND},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            line = (await asyncio.wait_for(process.stderr.readline(), timeout=WITHIN)).decode().strip()
            assert line == (
                f"another migration of this database is under way, in session pid {holder.get_server_pid()}, {STUCK}, "
                "idle in transaction: waiting for it to end, however long it takes (migrations run one at a time); if "
                "that session hangs, end it (SELECT pg_terminate_backend(PID)) and this one goes on"
            )
            assert process.returncode is None  # still waiting its turn
        except BaseException:
            process.kill()
            await process.wait()
            raise
        await transaction.commit()
    finally:
        await holder.close()

    out, err = await asyncio.wait_for(process.communicate(), timeout=WITHIN)
    assert process.returncode == 0, out + err
    assert await _revision(database_url) == HEAD


@POSTGRESQL_ONLY
async def test_a_statement_timeout_shorter_than_the_bound_is_said_as_such_not_as_a_lock_wait(
    database_url: str,
) -> None:
    """A database (or role) whose statement_timeout ends the migration's wait before the lock bound does: one line
    saying the database cancelled it and nothing was written, exit 4, not a traceback (exit 1), nor a lock wait."""
    await _at_revision_before(database_url)
    admin = await asyncpg.connect(_admin_dsn(database_url))
    try:
        await admin.execute(f'ALTER DATABASE "{make_url(database_url).database}" SET statement_timeout = 200')
    finally:
        await admin.close()

    async with _reader_left_open(database_url):
        code, out, err = await _registry("migrate", database_url=database_url, env={**ENGLISH, **BOUND})

    assert code == 4, out + err
    assert err.strip().splitlines() == [
        "error: the database cancelled a statement (canceling statement due to statement timeout): a "
        "statement_timeout set on the database or its role, or an administrator, ended it; its transaction was "
        "rolled back, so nothing of it was written"
    ], err
    assert await _revision(database_url) == BEFORE


@POSTGRESQL_ONLY
async def test_a_migration_waiting_behind_another_registry_migration_names_it(database_url: str) -> None:
    """The first starter holds the turn while it waits (bounded) for the idle reader; the second says whose turn it
    waits for: the first's session by the name the registry's migrations connect with. Once the reader ends, both
    succeed."""
    await _at_revision_before(database_url)
    patient = {**ENGLISH, "REGISTRY_MIGRATE_LOCK_TIMEOUT_SECONDS": str(WITHIN)}
    async with _reader_left_open(database_url):
        first = asyncio.create_task(_registry("migrate", database_url=database_url, env=patient))
        watcher = await asyncpg.connect(_admin_dsn(database_url))
        try:
            waiting = "SELECT pid FROM pg_locks WHERE locktype = 'relation' AND NOT granted"
            while (pid := await watcher.fetchval(waiting)) is None:
                assert not first.done(), first.result()
                await asyncio.sleep(0.05)
        finally:
            await watcher.close()
        process = await asyncio.create_subprocess_exec(
            *REGISTRY,
            "migrate",
            env={**os.environ, **registry_env(database_url), **patient},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            line = (await asyncio.wait_for(process.stderr.readline(), timeout=WITHIN)).decode()
        except BaseException:
            process.kill()
            await process.wait()
            raise
        assert line.startswith(
            f"another migration of this database is under way, in session pid {pid}, talent-registry-migrate, active:"
        ), line

    code, out, err = await first
    assert code == 0, out + err
    out_b, err_b = await asyncio.wait_for(process.communicate(), timeout=WITHIN)
    assert process.returncode == 0, out_b + err_b
    assert await _revision(database_url) == HEAD
