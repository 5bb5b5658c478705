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

from registry.certificates import imports
from registry.db import transaction
from tests.conftest import MASTER_KEY
from tests.factories import admin_token, create_issuer, resident_id

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
