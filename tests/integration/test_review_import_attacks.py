"""Review of `registry import`'s lock bound (registry.db.bound_lock_waits) and its stops (import_stops), attacked on
a real database. Each stop's words are checked against what the database holds, and a re-run must end with every row
issued exactly once and both claim-code files complete:
- a shorter ``lock_timeout`` set on the database or the role (in ms, s or bare) is kept; 0 or a longer one gives way
  to the bound; SET LOCAL does not outlive its transaction; with the server's own bound on one engine the shorter wins;
- behind PgBouncer (session mode) the bound and a shorter database setting both hold;
- the connection killed while the chunk's COMMIT runs (a deferred trigger sleeping there): said unknown, rolled back;
- killed in a slow statement before the COMMIT: said unknown (true, if cautious), rolled back;
- a lock met at COMMIT (a deferred trigger's advisory lock): said not committed, and it was not;
- registry serve's batch holding the audit chain's lock: stops at row 1, nothing committed;
- the same roll imported three times at once (twice from one path, once from a copy);
- SQLite with the default 60 s bound waits out a writer holding the lock 2 s, as with the old 30 s.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from registry.audit.service import _CHAIN_LOCK
from registry.config import Settings
from registry.db import create_engine
from registry.faults import Fault, database_fault
from tests.conftest import _admin_dsn
from tests.integration.test_import_interrupted import _issued, _roll
from tests.integration.test_import_language import ENGLISH
from tests.integration.test_import_lock_wait import _import
from tests.integration.test_pgbouncer import _held_directly, _pgbouncer

POSTGRES = pytest.mark.parametrize("backend", ["postgresql"])


async def _admin(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(_admin_dsn(database_url))


async def _import_killed_at(
    admin: asyncpg.Connection, path: Path, database_url: str, where: str
) -> tuple[int, str, str]:
    """The import of ``path``, its backend terminated from ``admin`` once ``pg_stat_activity`` shows it ``where``."""
    task = asyncio.create_task(_import(path, database_url, ENGLISH, within=30))
    deadline, killed = time.monotonic() + 20, False
    while time.monotonic() < deadline and not task.done():
        pids = await admin.fetch(
            f"SELECT pid FROM pg_stat_activity WHERE {where} "  # noqa: S608 - the tests' own conditions
            "AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        if pids:
            await admin.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
            killed = True
            break
        await asyncio.sleep(0.05)
    code, out, err = await task
    assert killed, out + err
    return code, out, err


@POSTGRES
@pytest.mark.parametrize("setting", ["300ms", "0.3s", "300"])
@pytest.mark.parametrize("on", ["DATABASE {database}", "ROLE CURRENT_USER IN DATABASE {database}"])
async def test_a_shorter_lock_timeout_set_on_the_database_or_role_is_kept_in_any_unit(
    database_url: str, backend: str, setting: str, on: str
) -> None:
    admin = await _admin(database_url)
    try:  # (a role's setting in this scratch database only: dropped with it)
        database = f'"{make_database_name(database_url)}"'
        await admin.execute(f"ALTER {on.format(database=database)} SET lock_timeout = '{setting}'")
    finally:
        await admin.close()
    engine = create_engine(database_url, lock_timeout=60)
    try:
        async with engine.begin() as connection:
            shown = (await connection.execute(text("SHOW lock_timeout"))).scalar_one()
        assert shown == "300ms", shown
    finally:
        await engine.dispose()


@POSTGRES
@pytest.mark.parametrize("setting", ["0", "2min"])
async def test_an_unbounded_or_longer_database_lock_timeout_gives_way_to_the_bound(
    database_url: str, backend: str, setting: str
) -> None:
    admin = await _admin(database_url)
    try:
        await admin.execute(f"ALTER DATABASE \"{make_database_name(database_url)}\" SET lock_timeout = '{setting}'")
    finally:
        await admin.close()
    engine = create_engine(database_url, lock_timeout=1.5)
    try:
        for _round in range(2):  # a second transaction on the same pooled connection: SET LOCAL did not stay
            async with engine.begin() as connection:
                shown = (await connection.execute(text("SHOW lock_timeout"))).scalar_one()
            assert shown == "1500ms", shown
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            shown = (await connection.execute(text("SHOW lock_timeout"))).scalar_one()
        assert shown == ("0" if setting == "0" else setting), shown
    finally:
        await engine.dispose()


@POSTGRES
async def test_with_the_servers_bound_on_the_same_engine_the_shorter_wins(database_url: str, backend: str) -> None:
    for lock_timeout, expected in ((60.0, None), (0.2, "200ms")):
        engine = create_engine(database_url, command_timeout=10, lock_timeout=lock_timeout)
        try:
            async with engine.begin() as connection:
                shown = (await connection.execute(text("SHOW lock_timeout"))).scalar_one()
            server_only = create_engine(database_url, command_timeout=10)
            try:
                async with server_only.begin() as connection:
                    server = (await connection.execute(text("SHOW lock_timeout"))).scalar_one()
            finally:
                await server_only.dispose()
            assert shown == (expected or server), (shown, server)
        finally:
            await engine.dispose()


def make_database_name(database_url: str) -> str:
    return str(make_url(database_url).database)


KILL_AT_COMMIT = """
CREATE FUNCTION review_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER review_slow_commit AFTER INSERT ON certificates DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW WHEN (NEW.holder_name = '导入2') EXECUTE FUNCTION review_slow_commit();
"""


@POSTGRES
async def test_a_connection_killed_while_the_commit_is_under_way_is_said_unknown_and_a_rerun_issues_each_row_once(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path)
    admin = await _admin(database_url)
    try:
        await admin.execute(KILL_AT_COMMIT)
        code, out, err = await _import_killed_at(
            admin, path, database_url, "query ILIKE 'COMMIT%' AND state = 'active'"
        )
        names = [row[0] for row in await admin.fetch("SELECT holder_name FROM certificates ORDER BY holder_name")]
        await admin.execute("DROP TRIGGER review_slow_commit ON certificates")
    finally:
        await admin.close()
    assert code == 4, out + err
    assert names == ["导入0", "导入1"], names  # killed before the COMMIT was durable: rolled back
    lines = [line.strip() for line in err.strip().splitlines()[-4:]]
    assert lines[0].startswith("error: the import stopped at row 3: the connection to the database was lost"), err
    assert lines[2].startswith("rows 3 to 4 may or may not have been issued"), err

    code, out, err = await _import(path, database_url, ENGLISH)
    assert code == 0, out + err
    assert "rows 5  issued 3  already issued 2  rejected 0" in out, out
    issued = _issued(path.with_suffix(".issued.csv"))
    assert [int(row[0]) for row in issued] == [1, 2, 3, 4, 5]
    assert all(row[3] for row in issued)
    async with app.state.sessions() as session:
        count = (await session.execute(text("SELECT count(*) FROM certificates"))).scalar_one()
    assert count == 5


@pytest.fixture
def bouncer(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The test database's URL through its own PgBouncer (tests/integration/test_pgbouncer.py), session mode."""
    server = make_url(settings.database_url)
    with _pgbouncer(tmp_path, server) as port:
        yield server.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


@POSTGRES
async def test_behind_pgbouncer_the_bound_and_a_shorter_database_setting_hold(
    settings: Settings, bouncer: str, database_url: str, backend: str
) -> None:
    admin = await _admin(database_url)
    try:  # before the bouncer opens its server connection: a setting reaches sessions begun after it
        await admin.execute(f"ALTER DATABASE \"{make_database_name(database_url)}\" SET lock_timeout = '0.2s'")
    finally:
        await admin.close()
    for bound, shown in ((60.0, "200ms"), (0.1, "100ms")):
        engine = create_engine(bouncer, lock_timeout=bound)
        try:
            async with engine.begin() as connection:
                assert (await connection.execute(text("SHOW lock_timeout"))).scalar_one() == shown
            async with _held_directly(settings, 4242):
                started = time.monotonic()
                with pytest.raises(DBAPIError) as met:
                    async with engine.begin() as connection:
                        await connection.execute(text("SELECT pg_advisory_xact_lock(4242)"))
                assert database_fault(met.value) is Fault.locked, met.value
                assert time.monotonic() - started < 5
        finally:
            await engine.dispose()


@POSTGRES
async def test_an_import_behind_a_batch_holding_the_audit_chain_stops_then_a_rerun_issues_each_row_once(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, database_url: str, backend: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path)
    bound = {**ENGLISH, "REGISTRY_IMPORT_LOCK_TIMEOUT_SECONDS": "0.5"}
    async with _held_directly(settings, _CHAIN_LOCK):  # as registry serve's batch holds it to its commit
        code, out, err = await _import(path, database_url, bound, within=20)
    assert code == 4, out + err
    lines = [line.strip() for line in err.strip().splitlines()[-3:]]
    assert lines[0].startswith("error: the import stopped at row 1: the registry is busy with other work"), err
    assert lines[1] == "nothing from row 1 on was committed", err
    async with app.state.sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM certificates"))).scalar_one() == 0

    code, out, err = await _import(path, database_url, bound)
    assert code == 0, out + err
    assert "rows 5  issued 5  already issued 0  rejected 0" in out, out
    assert [int(row[0]) for row in _issued(path.with_suffix(".issued.csv"))] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_sqlite_import_with_the_default_bound_waits_out_a_writer_as_before(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    """registry serve writing meanwhile (its write lock held 2 s): the import, with the default 60 s bound, waits its
    turn and completes, as it did with the fixed 30 s busy timeout."""
    path = await _roll(app, client, tmp_path)
    other = sqlite3.connect(str(make_url(database_url).database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    task = asyncio.create_task(_import(path, database_url, ENGLISH))
    await asyncio.sleep(2)
    other.execute("ROLLBACK")
    other.close()
    code, out, err = await task
    assert code == 0, out + err
    assert "rows 5  issued 5  already issued 0  rejected 0" in out, out


LOCK_AT_COMMIT = """
CREATE FUNCTION review_lock_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_xact_lock(4343); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER review_lock_at_commit AFTER INSERT ON certificates DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW WHEN (NEW.holder_name = '导入2') EXECUTE FUNCTION review_lock_at_commit();
"""
SLOW_ROW = """
CREATE FUNCTION review_slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$;
CREATE TRIGGER review_slow_row BEFORE INSERT ON certificates
FOR EACH ROW WHEN (NEW.holder_name = '导入2') EXECUTE FUNCTION review_slow_row();
"""


async def _rerun_issues_each_row_once(app: FastAPI, path: Path, database_url: str, issued_before: int) -> None:
    code, out, err = await _import(path, database_url, ENGLISH)
    assert code == 0, out + err
    assert f"rows 5  issued {5 - issued_before}  already issued {issued_before}  rejected 0" in out, out
    issued = _issued(path.with_suffix(".issued.csv"))
    assert [int(row[0]) for row in issued] == [1, 2, 3, 4, 5]
    assert all(row[3] for row in issued)
    async with app.state.sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM certificates"))).scalar_one() == 5


@POSTGRES
async def test_a_lock_met_at_commit_is_said_rolled_back_and_it_was(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, database_url: str, backend: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path)
    admin = await _admin(database_url)
    try:
        await admin.execute(LOCK_AT_COMMIT)
        async with _held_directly(settings, 4343):
            code, out, err = await _import(
                path, database_url, {**ENGLISH, "REGISTRY_IMPORT_LOCK_TIMEOUT_SECONDS": "0.5"}, within=20
            )
        names = [row[0] for row in await admin.fetch("SELECT holder_name FROM certificates ORDER BY holder_name")]
        await admin.execute("DROP TRIGGER review_lock_at_commit ON certificates")
    finally:
        await admin.close()
    assert code == 4, out + err
    assert names == ["导入0", "导入1"], names
    lines = [line.strip() for line in err.strip().splitlines()[-4:]]
    assert lines[0].startswith("error: the import stopped at row 3: the registry is busy with other work"), err
    assert lines[2] == "nothing from row 3 on was committed", err
    await _rerun_issues_each_row_once(app, path, database_url, 2)


@POSTGRES
async def test_a_connection_killed_in_a_slow_statement_before_the_commit_and_a_rerun_issues_each_row_once(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path)
    admin = await _admin(database_url)
    try:
        await admin.execute(SLOW_ROW)
        code, out, err = await _import_killed_at(admin, path, database_url, "wait_event = 'PgSleep'")
        names = [row[0] for row in await admin.fetch("SELECT holder_name FROM certificates ORDER BY holder_name")]
        await admin.execute("DROP TRIGGER review_slow_row ON certificates")
    finally:
        await admin.close()
    assert code == 4, out + err
    assert names == ["导入0", "导入1"], names
    lines = [line.strip() for line in err.strip().splitlines()[-4:]]
    assert lines[0].startswith("error: the import stopped at row 3: the connection to the database was lost"), err
    assert lines[2].startswith("rows 3 to 4 may or may not have been issued"), err
    await _rerun_issues_each_row_once(app, path, database_url, 2)


async def test_two_imports_of_one_roll_at_once_issue_each_row_once(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path)
    copy = tmp_path / "copy" / path.name
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    runs = [_import(roll, database_url, ENGLISH) for roll in (path, path, copy)]
    results = await asyncio.gather(*runs)
    for code, out, err in results:
        assert code in (0, 4, 5), out + err
        assert "Traceback" not in err, err
    for roll in (path, copy):  # whatever stopped, re-running carries on
        code, out, err = await _import(roll, database_url, ENGLISH)
        assert code == 0, out + err
        assert "rows 5  issued 0  already issued 5  rejected 0" in out, out
        issued = _issued(roll.with_suffix(".issued.csv"))
        assert [int(row[0]) for row in issued] == [1, 2, 3, 4, 5]
        assert all(row[3] for row in issued)
    async with app.state.sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM certificates"))).scalar_one() == 5
