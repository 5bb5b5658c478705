"""`registry import`: chunked, resumable, bad rows set aside with reasons."""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import IMPORT_EXIT_CODES
from cli.main import app as cli_app
from registry.certificates import imports
from registry.db import transaction
from registry.errors import InvalidInput
from tests.checks import assert_problem
from tests.conftest import MASTER_KEY
from tests.factories import admin_token, bearer, create_issuer, ready_issuer, resident_id
from tests.integration.cli_support import registry_env, run_registry

HEADER = [
    "cert_type",
    "catalogue_code",
    "level",
    "holder_name",
    "holder_id_type",
    "holder_id_number",
    "awarded_on",
    "valid_until",
    "evaluation_batch",
]


def _write(path: Path, count: int, *, bad: frozenset[int] = frozenset()) -> list[list[str]]:
    rows = []
    for i in range(count):
        number = resident_id(sequence=i, birth="19900101")
        if i in bad:
            number = number[:-1] + ("0" if number[-1] != "0" else "1")
        rows.append(
            ["title", "ENG-AI", "intermediate", f"导入{i}", "resident_id", number, "2026-05-01", "", "IMPORT-1"]
        )
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return rows


async def _certificates(app: FastAPI) -> int:
    async with transaction(app.state.sessions) as session:
        return int((await session.execute(text("SELECT count(*) FROM certificates"))).scalar_one())


async def test_import_sets_bad_rows_aside_and_resumes_without_issuing_twice(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "CHUNK_ROWS", 4)
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    full = tmp_path / "round.csv"
    _write(full, 11, bad=frozenset({2, 9}))
    partial = tmp_path / "partial.csv"
    _write(partial, 8, bad=frozenset({2}))  # the same first two chunks: the run "crashed" after them

    first = await imports.run_import(app.state.context, app.state.sessions, path=partial, issuer_code="BJ-AI-COMMITTEE")
    assert (first.issued, first.rejected, first.chunks) == (7, 1, 2)
    assert await _certificates(app) == 7

    progress: list[int] = []
    resumed = await imports.run_import(
        app.state.context, app.state.sessions, path=full, issuer_code="BJ-AI-COMMITTEE", on_progress=progress.append
    )
    assert (resumed.already_issued, resumed.issued, resumed.rejected) == (7, 2, 2)
    assert progress == [4, 4, 3]
    assert await _certificates(app) == 9

    again = await imports.run_import(app.state.context, app.state.sessions, path=full, issuer_code="BJ-AI-COMMITTEE")
    assert (again.already_issued, again.issued) == (9, 0)
    assert await _certificates(app) == 9

    with (tmp_path / "round.rejected.csv").open(encoding="utf-8") as handle:
        rejected = list(csv.reader(handle))
    assert [row[0] for row in rejected[1:]] == ["3", "10"]
    assert "holder.id_number" in rejected[1][-1]
    assert (tmp_path / "round.rejected.csv").stat().st_mode & 0o077 == 0
    with (tmp_path / "round.issued.csv").open(encoding="utf-8") as handle:
        issued = list(csv.reader(handle))
    assert len(issued) == 1 + 9
    assert all(len(row[3]) == 14 for row in issued[1:])  # claim codes, for the body to hand out


async def test_import_command_shows_progress_and_a_summary(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    path = tmp_path / "small.csv"
    _write(path, 5, bad=frozenset({4}))
    env = {
        **os.environ,
        "REGISTRY_DATABASE_URL": database_url,
        "REGISTRY_MASTER_KEY": MASTER_KEY,
        "REGISTRY_ENV": "test",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "import",
        str(path),
        "--issuer",
        "BJ-AI-COMMITTEE",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 3, err.decode()  # some rows were rejected
    output = out.decode()
    assert "rows 5  issued 4  already issued 0  rejected 1" in output
    assert "rows/s" in output
    assert "small.rejected.csv" in output
    assert await _certificates(app) == 4


# Pre-flight refusals: the whole file is refused before a progress bar is drawn or any output file created, and the
# exit code says why (IMPORT_EXIT_CODES, listed in `registry import --help`).


def _listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def _folder(tmp_path: Path) -> Path:
    """A folder of its own for the input file (a SQLite test database lives in tmp_path, with its journal files)."""
    folder = tmp_path / "import"
    folder.mkdir()
    return folder


def _shows_no_progress(out: str, err: str) -> bool:
    return not any(mark in out + err for mark in ("importing", "rows/s", "━"))


def test_import_help_lists_every_exit_code() -> None:
    result = CliRunner().invoke(cli_app, ["import", "--help"])
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    assert "Exit codes:" in shown
    for code, meaning in IMPORT_EXIT_CODES.items():
        assert " ".join(f"{code}  {meaning}".split()) in shown


async def test_import_command_exits_0_when_every_row_is_issued_also_on_a_rerun(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    await create_issuer(client, await admin_token(app, client))
    folder = _folder(tmp_path)
    path = folder / "good.csv"
    _write(path, 3)
    code, out, err = await run_registry(
        "import", str(path), "--issuer", "BJ-AI-COMMITTEE", env=registry_env(database_url)
    )
    assert code == 0, err
    assert "rows 3  issued 3  already issued 0  rejected 0" in out
    code, out, err = await run_registry(
        "import", str(path), "--issuer", "BJ-AI-COMMITTEE", env=registry_env(database_url)
    )
    assert code == 0, err
    assert "rows 3  issued 0  already issued 3  rejected 0" in out


async def test_a_header_mismatch_names_missing_and_unexpected_columns_and_writes_no_file(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    await create_issuer(client, await admin_token(app, client))
    folder = _folder(tmp_path)
    path = folder / "renamed.csv"
    _write(path, 3)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0].replace(",level,", ",lvl,") + "".join(lines[1:]), encoding="utf-8")
    before = _listing(folder)

    code, out, err = await run_registry(
        "import", str(path), "--issuer", "BJ-AI-COMMITTEE", env=registry_env(database_url)
    )
    assert code == 2, err
    assert "the CSV header does not match: missing: level; unexpected: lvl" in err
    assert "level: column missing from the CSV header" in err
    assert "lvl: unknown column" in err
    assert _shows_no_progress(out, err), out + err
    assert _listing(folder) == before
    assert await _certificates(app) == 0


async def test_an_empty_file_is_refused_as_empty_not_as_a_header_missing_every_column(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """As an empty upload is ("body: is required"): before, it was a header mismatch naming seven missing columns."""
    await create_issuer(client, await admin_token(app, client))
    folder = _folder(tmp_path)
    path = folder / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InvalidInput) as refused:
        await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code="BJ-AI-COMMITTEE")
    assert [(error.field, str(error.message)) for error in refused.value.errors] == [("file", "is empty")]
    assert _listing(folder) == ["empty.csv"]


async def test_a_file_with_a_header_and_no_rows_is_refused_before_any_file_is_written(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """As a batch with no rows is refused: before, the import said 0 rows, 0 issued, exit 0 ("every row issued")."""
    await create_issuer(client, await admin_token(app, client))
    folder = _folder(tmp_path)
    path = folder / "header-only.csv"
    _write(path, 1)
    path.write_text(path.read_text(encoding="utf-8").splitlines(keepends=True)[0] + "\n\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code="BJ-AI-COMMITTEE")
    assert [(error.field, str(error.message)) for error in refused.value.errors] == [
        ("file", "the batch has no rows")  # as an upload with no rows is told
    ]
    assert _listing(folder) == ["header-only.csv"]


async def test_a_batch_upload_header_mismatch_names_the_columns_alike(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    token = await ready_issuer(app, client)
    folder = _folder(tmp_path)
    path = folder / "renamed.csv"
    _write(path, 1)
    content = path.read_text(encoding="utf-8").replace(",level,", ",lvl,", 1)
    headers = {**bearer(token), "Content-Type": "text/csv", "Idempotency-Key": "renamed-header"}
    response = await client.post("/v1/certificate-batches", content=content.encode(), headers=headers)
    problem = assert_problem(response, 422, slug="batch-rejected", field="lvl", message="unknown column")
    assert problem["detail"] == "the CSV header does not match: missing: level; unexpected: lvl"


@pytest.mark.parametrize("suspended", [False, True], ids=["unknown body", "suspended body"])
async def test_a_body_that_cannot_issue_is_refused_before_the_progress_bar_and_any_file(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path, suspended: bool
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    if suspended:
        response = await client.post(
            "/v1/issuers/BJ-AI-COMMITTEE/suspend", json={"reason": "整改"}, headers=bearer(admin)
        )
        assert response.status_code == 200, response.text
    folder = _folder(tmp_path)
    path = folder / "round.csv"
    _write(path, 3)
    before = _listing(folder)

    body = "BJ-AI-COMMITTEE" if suspended else "BJ-NO-SUCH-BODY"
    code, out, err = await run_registry("import", str(path), "--issuer", body, env=registry_env(database_url))
    assert code == 1, err
    assert ("is suspended and cannot issue" if suspended else "no evaluation body BJ-NO-SUCH-BODY") in err
    assert _shows_no_progress(out, err), out + err
    assert _listing(folder) == before


async def test_an_unreachable_database_exits_4_before_the_progress_bar_and_any_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    path = folder / "round.csv"
    _write(path, 3)
    nowhere = "postgresql+asyncpg://registry:registry@127.0.0.1:1/registry"  # port 1: nothing listens there

    code, out, err = await run_registry("import", str(path), "--issuer", "BJ-AI-COMMITTEE", env=registry_env(nowhere))
    assert code == 4, err
    assert "error: the database cannot be reached" in err
    assert _shows_no_progress(out, err), out + err
    assert _listing(folder) == ["round.csv"]


async def test_a_missing_file_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    env = registry_env("sqlite+aiosqlite:///" + str(tmp_path / "unused.db"))
    code, _out, err = await run_registry("import", str(folder / "absent.csv"), "--issuer", "BJ-AI-COMMITTEE", env=env)
    assert code == 2, err
    assert err.strip() == f"error: {folder / 'absent.csv'}: cannot be read: no such file or directory", err
    assert _listing(folder) == []
