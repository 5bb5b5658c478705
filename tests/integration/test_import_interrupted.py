"""`registry import` stopped midway by the database says what is true: how many rows earlier chunks committed (and
where their claim codes are), whether the chunk it stopped in was written, and that running the same command again
carries on without issuing a row twice. It used to repeat the API's words for a single request ("nothing was changed:
send it again") although the chunks before were committed.

The command runs as an operator runs it, in a process of its own, with chunks of two rows so that a fault can meet the
second chunk: on SQLite another connection holds the write lock past the busy timeout; on PostgreSQL a trigger makes
the second chunk wait for a lock the test holds past ``lock_timeout`` (55P03), or ends its own connection.
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from tests.conftest import _admin_dsn
from tests.factories import admin_token, create_issuer, resident_id
from tests.integration.cli_support import registry_env
from tests.integration.test_import import HEADER
from tests.integration.test_import_language import CHINESE, ENGLISH, ISSUER

ROWS = 5  # chunks of two: rows 1-2 are committed before the fault meets rows 3-4
ADVISORY_LOCK = 424242
# The registry command with chunks of two rows. On SQLite, when FAULT_SQLITE names the database file, another
# connection takes its write lock as the second chunk starts (held to the process's end) and the busy timeout is
# short, so the chunk gives up at once with "database is locked" as it would after 30 s behind a long batch.
IMPORT_IN_CHUNKS_OF_TWO = """
import os, sqlite3, sys
from sqlalchemy import event
import registry.db
from registry.certificates import imports

imports.CHUNK_ROWS = 2
database = os.environ.get("FAULT_SQLITE")
if database:
    make_engine, chunk, held = registry.db.create_engine, imports._import_chunk, []

    def create_engine(url, **options):
        engine = make_engine(url, **options)
        event.listen(engine.sync_engine, "connect", lambda dbapi, _record: dbapi.cursor().execute(
            "PRAGMA busy_timeout=100"))
        return engine

    async def import_chunk(*args, **options):
        if held == [] and imports_started():
            other = sqlite3.connect(database, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            held.append(other)
        return await chunk(*args, **options)

    calls = []
    def imports_started():
        calls.append(1)
        return len(calls) == 2

    registry.db.create_engine, imports._import_chunk = create_engine, import_chunk
from cli.main import main
sys.argv[0] = "registry"
main()
"""


async def _run(path: Path, database_url: str, locale: dict[str, str], **extra: str) -> tuple[int, str, str]:
    env = {**os.environ, **registry_env(database_url), **locale, **extra}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        IMPORT_IN_CHUNKS_OF_TWO,
        "import",
        str(path),
        "--issuer",
        ISSUER,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _roll(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path) -> Path:
    await create_issuer(client, await admin_token(app, client))
    folder = tmp_path / "import"
    folder.mkdir()
    path = folder / "roll.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(ROWS):
            number = resident_id(sequence=i, birth="19900101")
            writer.writerow(
                ["title", "ENG-AI", "intermediate", f"导入{i}", "resident_id", number, "2026-05-01", "", "B"]
            )
    return path


def busy_at_row_3(path: Path) -> list[str]:
    """The lines an import of ``path`` in chunks of two stops with when its second chunk could not take its turn."""
    return [
        "error: the import stopped at row 3: the registry is busy with other work on the same records (such as a "
        "large batch) and the import could not take its turn in time",
        f"rows 1 to 2 were committed before it (2 issued, 0 already issued, 0 rejected): their claim codes are in "
        f"{path.with_suffix('.issued.csv')}, the rejected rows in {path.with_suffix('.rejected.csv')}",
        "nothing from row 3 on was committed",
        "run the same command again to carry on: no row is issued twice, and this run's files are kept beside the new "
        "ones as numbered backups",
    ]


def _issued(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


async def _postgres(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(_admin_dsn(database_url))


async def _second_chunk_meets(database_url: str, action: str) -> None:
    """A trigger on PostgreSQL: inserting row 3's certificate (导入2, the second chunk's first row) runs ``action``."""
    connection = await _postgres(database_url)
    try:
        await connection.execute(
            f"""
            CREATE FUNCTION second_chunk_fault() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.holder_name = '导入2' THEN {action}; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER second_chunk_fault BEFORE INSERT ON certificates
                FOR EACH ROW EXECUTE FUNCTION second_chunk_fault();
            """
        )
    finally:
        await connection.close()


async def _without_fault(database_url: str) -> None:
    connection = await _postgres(database_url)
    try:
        await connection.execute("DROP TRIGGER second_chunk_fault ON certificates")
    finally:
        await connection.close()


async def _hold_advisory_lock(database_url: str) -> AsyncIterator[None]:
    connection = await _postgres(database_url)
    try:
        name = make_url(database_url).database
        await connection.execute(f"ALTER DATABASE \"{name}\" SET lock_timeout = '200ms'")
        await connection.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK)
        yield
    finally:
        await connection.close()


async def _interrupted(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path, locale: dict[str, str]
) -> tuple[Path, int, str, str]:
    """A roll of five rows whose import meets a lock held elsewhere in its second chunk: exit code, out and err."""
    path = await _roll(app, client, tmp_path)
    if backend == "sqlite":
        database = str(make_url(database_url).database)
        code, out, err = await _run(path, database_url, locale, FAULT_SQLITE=database)
        return path, code, out, err
    await _second_chunk_meets(database_url, f"PERFORM pg_advisory_lock({ADVISORY_LOCK})")
    async for _held in _hold_advisory_lock(database_url):
        code, out, err = await _run(path, database_url, locale)
    await _without_fault(database_url)
    return path, code, out, err


async def test_an_import_stopped_by_a_lock_says_which_rows_were_committed_and_that_a_rerun_carries_on(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    path, code, out, err = await _interrupted(app, client, database_url, backend, tmp_path, ENGLISH)

    assert code == 4, out + err  # as documented: the database is out of reach or busy, re-running carries on
    assert "nothing was changed" not in err, err
    assert "send it again" not in err, err
    issued = path.with_suffix(".issued.csv")
    assert len(_issued(issued)) == 2, err  # the first chunk's claim codes are kept
    assert [line.strip() for line in err.strip().splitlines()[-4:]] == busy_at_row_3(path), err

    code, out, err = await _run(path, database_url, ENGLISH)  # what the message promises
    assert code == 0, out + err
    assert "rows 5  issued 3  already issued 2  rejected 0" in out, out
    assert "the earlier roll.issued.csv is kept as roll.issued.csv.1" in err, err
    kept = _issued(issued.with_name("roll.issued.csv.1"))
    assert [row[1:] for row in _issued(issued)[:2]] == [row[1:] for row in kept]  # the same claim codes again


async def test_an_import_stopped_by_a_lock_says_so_in_chinese_in_a_chinese_locale(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    path, code, out, err = await _interrupted(app, client, database_url, backend, tmp_path, CHINESE)

    assert code == 4, out + err
    lines = [line.strip() for line in err.strip().splitlines()[-4:]]
    assert lines[0].startswith("错误：导入在第 3 行停下："), err
    assert lines[1] == (
        f"此前已提交第 1 至 2 行（新签发 2，此前已签发 0，拒收 0）：领取码在 {path.with_suffix('.issued.csv')}，"
        f"被拒收的行在 {path.with_suffix('.rejected.csv')}"
    ), err
    assert lines[2] == "第 3 行起均未提交", err
    assert lines[3].startswith("再次运行同一命令即可继续："), err
    assert "nothing" not in err, err
    assert "send it again" not in err, err


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_an_import_whose_connection_was_lost_says_the_chunk_under_way_may_have_been_issued(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path)
    await _second_chunk_meets(database_url, "PERFORM pg_terminate_backend(pg_backend_pid())")

    code, out, err = await _run(path, database_url, ENGLISH)
    await _without_fault(database_url)

    assert code == 4, out + err
    assert "nothing was changed" not in err, err
    lines = [line.strip() for line in err.strip().splitlines()[-4:]]
    assert lines[0] == "error: the import stopped at row 3: the connection to the database was lost", err
    assert lines[1].startswith("rows 1 to 2 were committed before it (2 issued, 0 already issued, 0 rejected)"), err
    assert lines[2] == (
        "rows 3 to 4 may or may not have been issued (the connection was lost before their commit was confirmed); "
        "nothing after them was committed"
    ), err

    code, out, err = await _run(path, database_url, ENGLISH)
    assert code == 0, out + err
    assert "rows 5  issued 3  already issued 2  rejected 0" in out, out
