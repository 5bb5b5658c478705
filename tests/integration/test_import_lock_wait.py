"""`registry import` behind a lock another session holds stops once its wait outlives
``REGISTRY_IMPORT_LOCK_TIMEOUT_SECONDS``, saying which rows were committed and that re-running carries on (exit 4);
it used to wait as long as the lock was held, without a word (PostgreSQL: no lock_timeout on the import's engine;
SQLite: a fixed 30 s busy timeout). A chunk that is merely slow is not stopped: only lock waits are bounded.

The command runs as an operator runs it, in a process of its own, with chunks of two rows; it pauses before its
second chunk until the test, on a connection of its own, holds the lock (PostgreSQL: ``LOCK TABLE certificates IN
EXCLUSIVE MODE``; SQLite: the write lock, ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from tests.conftest import _admin_dsn
from tests.integration.cli_support import REGISTRY, registry_env
from tests.integration.test_import_interrupted import _issued, _roll, busy_at_row_3
from tests.integration.test_import_language import CHINESE, ENGLISH, ISSUER

# `registry import` (python -m cli) with chunks of two rows; with PAUSE_BEFORE_SECOND_CHUNK set, it writes
# PAUSE.ready before its second chunk and waits for PAUSE.go.
IMPORT_IN_CHUNKS_OF_TWO = """
import os, runpy, sys, time
from pathlib import Path
from registry.certificates import imports

imports.CHUNK_ROWS = 2
pause = os.environ.get("PAUSE_BEFORE_SECOND_CHUNK")
if pause:
    chunk, calls = imports._import_chunk, []

    async def import_chunk(*args, **options):
        calls.append(1)
        if len(calls) == 2:
            Path(pause + ".ready").touch()
            while not Path(pause + ".go").exists():
                time.sleep(0.02)
        return await chunk(*args, **options)

    imports._import_chunk = import_chunk
sys.argv = ["registry", *sys.argv[1:]]
runpy.run_module("cli", run_name="__main__")
"""
BOUND = {"REGISTRY_IMPORT_LOCK_TIMEOUT_SECONDS": "0.5"}
Held = Callable[[], Awaitable[list[str]]]  # the holders' names of the certificates, read by the lock's holder


async def _import(path: Path, database_url: str, env: dict[str, str], *, within: float = 60) -> tuple[int, str, str]:
    assert REGISTRY[1:] == ["-m", "cli"]  # the command cli_support runs, in chunks of two
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        IMPORT_IN_CHUNKS_OF_TWO,
        "import",
        str(path),
        "--issuer",
        ISSUER,
        env={**os.environ, **registry_env(database_url), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"registry import was still waiting after {within} s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@asynccontextmanager
async def _lock(database_url: str, backend: str, mode: str = "EXCLUSIVE") -> AsyncIterator[Held]:
    """The lock a second connection holds until the block ends; yields how to read the certificates under it."""
    if backend == "sqlite":
        other = sqlite3.connect(str(make_url(database_url).database), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")

        async def names_sqlite() -> list[str]:
            return [name for (name,) in other.execute("SELECT holder_name FROM certificates ORDER BY holder_name")]

        try:
            yield names_sqlite
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    connection = await asyncpg.connect(_admin_dsn(database_url))
    transaction = connection.transaction()
    await transaction.start()
    await connection.execute(f"LOCK TABLE certificates IN {mode} MODE")

    async def names_postgres() -> list[str]:
        return [row[0] for row in await connection.fetch("SELECT holder_name FROM certificates ORDER BY holder_name")]

    try:
        yield names_postgres
    finally:
        await transaction.rollback()
        await connection.close()


async def _stopped_behind_a_lock(
    path: Path, database_url: str, backend: str, locale: dict[str, str]
) -> tuple[int, str, list[str]]:
    """The import of ``path``, its second chunk meeting the lock: exit code, stderr, certificates while stopped."""
    pause = str(path.with_name("pause"))
    env = {**locale, **BOUND, "PAUSE_BEFORE_SECOND_CHUNK": pause}
    task = asyncio.create_task(_import(path, database_url, env, within=20))
    while not await asyncio.to_thread(os.path.exists, pause + ".ready"):
        assert not task.done(), task.result()
        await asyncio.sleep(0.02)
    async with _lock(database_url, backend) as names:
        await asyncio.to_thread(Path(pause + ".go").touch)
        code, out, err = await task
        held = await names()  # read under the lock, before it is released
    return code, out + err, held


async def test_an_import_behind_a_lock_stops_at_the_bound_says_what_was_committed_and_a_rerun_completes(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path)

    code, said, held = await _stopped_behind_a_lock(path, database_url, backend, ENGLISH)

    assert code == 4, said
    assert held == ["导入0", "导入1"], held  # the first chunk committed, nothing of the stopped one
    issued = path.with_suffix(".issued.csv")
    assert [line.strip() for line in said.strip().splitlines()[-4:]] == busy_at_row_3(path), said
    assert len(_issued(issued)) == 2, said

    code, out, err = await _import(path, database_url, {**ENGLISH, **BOUND})  # the lock released
    assert code == 0, out + err
    assert "rows 5  issued 3  already issued 2  rejected 0" in out, out
    assert len(_issued(issued)) == 5


async def test_an_import_behind_a_lock_says_so_in_chinese(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path)

    code, said, held = await _stopped_behind_a_lock(path, database_url, backend, CHINESE)

    assert code == 4, said
    assert held == ["导入0", "导入1"], held
    lines = [line.strip() for line in said.strip().splitlines()[-4:]]
    assert lines[0].startswith("错误：导入在第 3 行停下："), said
    assert lines[1].startswith("此前已提交第 1 至 2 行（新签发 2，此前已签发 0，拒收 0）"), said
    assert lines[2] == "第 3 行起均未提交", said
    assert lines[3].startswith("再次运行同一命令即可继续："), said


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_slow_chunk_is_not_stopped_only_a_lock_wait_is(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path)
    connection = await asyncpg.connect(_admin_dsn(database_url))
    try:  # every chunk's insert takes a second, twice the bound on lock waits
        await connection.execute(
            """
            CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$;
            CREATE TRIGGER slow_insert BEFORE INSERT ON certificates
                FOR EACH STATEMENT EXECUTE FUNCTION slow_insert();
            """
        )
    finally:
        await connection.close()

    code, out, err = await _import(path, database_url, {**ENGLISH, **BOUND})

    assert code == 0, out + err
    assert "rows 5  issued 5  already issued 0  rejected 0" in out, out


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_an_import_that_meets_the_lock_at_its_first_chunk_says_nothing_was_committed(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path)

    async with _lock(database_url, backend) as names:  # held before the import starts
        code, out, err = await _import(path, database_url, {**ENGLISH, **BOUND}, within=20)
        held = await names()

    assert code == 4, out + err
    assert held == []
    lines = [line.strip() for line in err.strip().splitlines()[-3:]]
    assert lines[0].startswith("error: the import stopped at row 1: the registry is busy with other work"), err
    assert lines[1] == "nothing from row 1 on was committed", err
    assert lines[2].startswith("run the same command again to carry on"), err


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_an_import_that_meets_an_access_exclusive_lock_before_its_first_row_stops_too(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    """A lock that holds up even reads (a migration's ALTER TABLE, a VACUUM FULL) meets the import in the migration
    and seal checks it runs first, before any chunk: bounded there too."""
    path = await _roll(app, client, tmp_path)

    async with _lock(database_url, backend, "ACCESS EXCLUSIVE"):  # held before the import starts
        code, out, err = await _import(path, database_url, {**ENGLISH, **BOUND}, within=20)

    assert code == 4, out + err
    assert err.strip().splitlines()[-1] == (
        "error: the registry is busy with other work on the same records (such as a large batch) and this request "
        "could not take its turn in time; nothing was changed: send it again"
    ), err
