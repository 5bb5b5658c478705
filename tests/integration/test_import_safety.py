"""`registry import` never loses what it wrote, never writes where it should not, and never echoes an identity
number: an earlier run's claim codes survive a re-run (even once its idempotency records expired), output files are
new and private and never reached through a link, a second import of the same file is refused before it touches
anything, a database out of reach is one line (for every command), and a CSV without its header row is refused
without repeating its cells.
"""

from __future__ import annotations

import csv
import hashlib
import stat
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text, update

from cli.main import count_rows
from registry.certificates import imports
from registry.certificates.models import IdempotencyRecord
from registry.db import transaction, utcnow
from tests.checks import assert_problem, leaves_no_trace
from tests.factories import admin_token, bearer, certificate_body, create_issuer, ready_issuer, resident_id
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.test_import import HEADER

ISSUER = "BJ-AI-COMMITTEE"
NOWHERE = "postgresql+asyncpg://registry:registry@127.0.0.1:1/registry"  # port 1: nothing listens there


def _write(path: Path, count: int, *, start: int = 0) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(start, start + count):
            number = resident_id(sequence=i, birth="19900101")
            writer.writerow(
                ["title", "ENG-AI", "intermediate", f"导入{i}", "resident_id", number, "2026-05-01", "", "B"]
            )


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "import"
    folder.mkdir()
    return folder


async def _roll(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path, rows: int) -> Path:
    """The body registered, and ``rows`` good rows in ``import/roll.csv``."""
    await create_issuer(client, await admin_token(app, client))
    path = _folder(tmp_path) / "roll.csv"
    _write(path, rows)
    return path


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.reader(handle))


async def _import(path: Path, database_url: str, **extra: str) -> tuple[int, str, str]:
    return await run_registry("import", str(path), "--issuer", ISSUER, env={**registry_env(database_url), **extra})


async def _certificates(app: FastAPI) -> int:
    async with transaction(app.state.sessions) as session:
        return int((await session.execute(text("SELECT count(*) FROM certificates"))).scalar_one())


# --- an earlier run's claim codes are never written over -------------------------------------------------------------


async def test_a_rerun_after_the_idempotency_records_expired_keeps_the_first_runs_claim_codes(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path, 3)
    code, _out, err = await _import(path, database_url)
    assert code == 0, err
    first = _rows(path.with_suffix(".issued.csv"))
    assert len(first) == 4
    async with transaction(app.state.sessions) as session:  # a day later: the chunks' records have expired
        await session.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(days=2)))

    code, _out, err = await _import(path, database_url)
    assert code == 3, err  # every row is now a duplicate of what the first run issued
    kept = path.with_name("roll.issued.csv.1")
    assert kept.exists(), sorted(p.name for p in path.parent.iterdir())
    assert _rows(kept) == first  # the claim codes, shown only once, are still there
    assert "roll.issued.csv is kept as roll.issued.csv.1" in err
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


async def test_every_rerun_keeps_each_earlier_output_under_the_next_free_number(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path, 2)
    path.with_name("roll.issued.csv.1").write_text("someone's own notes\n", encoding="utf-8")
    for _run in range(3):
        await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code=ISSUER)
    assert path.with_name("roll.issued.csv.1").read_text(encoding="utf-8") == "someone's own notes\n"
    codes = [[row[3] for row in _rows(path.with_name(name))[1:]] for name in ("roll.issued.csv.2", "roll.issued.csv")]
    assert len(codes[0]) == 2
    assert codes[1] == codes[0]  # the replayed run repeats the same claim codes
    assert path.with_name("roll.issued.csv.3").exists()
    assert path.with_name("roll.rejected.csv.2").exists()


# --- output files: new, private, never through a link -------------------------------------------------------------


async def test_an_output_file_left_world_readable_gives_way_to_a_private_one(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path, 2)
    issued, rejected = path.with_suffix(".issued.csv"), path.with_suffix(".rejected.csv")
    issued.touch()
    rejected.write_text("an old listing\n", encoding="utf-8")
    for output in (issued, rejected):
        output.chmod(0o644)

    code, _out, err = await _import(path, database_url)
    assert code == 0, err
    for output in (issued, rejected, path.with_name("roll.rejected.csv.1")):
        assert stat.S_IMODE(output.stat().st_mode) == 0o600, output.name
    assert len(_rows(issued)) == 3


async def test_a_symbolic_link_at_an_output_path_is_refused_and_its_target_left_alone(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path, 2)
    folder = path.parent
    victim = folder / "victim.txt"
    victim.write_text("important\n", encoding="utf-8")
    path.with_suffix(".rejected.csv").symlink_to(victim.name)

    code, out, err = await _import(path, database_url)
    assert code == 2, out + err
    assert "roll.rejected.csv: is a symbolic link" in err
    assert victim.read_text(encoding="utf-8") == "important\n"
    assert sorted(p.name for p in folder.iterdir()) == ["roll.csv", "roll.rejected.csv", "victim.txt"]
    assert await _certificates(app) == 0


# --- two imports of one file --------------------------------------------------------------------------------------


async def test_a_second_import_of_a_file_being_imported_exits_5_and_touches_nothing(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path, 3)
    folder = path.parent
    running = await imports.prepare(app.state.sessions, path=path, issuer_code=ISSUER)  # the first, under way

    code, out, err = await _import(path, database_url)
    assert code == 5, out + err
    assert f"another registry import of {path} is running" in err
    assert "Idempotency-Key" not in err
    assert sorted(p.name for p in folder.iterdir()) == [imports.lock_file(path).name, "roll.csv"]  # the first's lock

    summary = await imports.import_rows(app.state.context, app.state.sessions, running)
    assert summary.issued == 3
    assert len(_rows(path.with_suffix(".issued.csv"))) == 4
    assert not imports.lock_file(path).exists()  # removed as the import ended


async def test_an_import_meeting_another_one_issuing_the_same_rows_exits_5_in_the_commands_words(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers: the second waits its turn instead")
    path = await _roll(app, client, tmp_path, 3)
    header, records = next(iter(list(imports._chunks(path))))
    key = imports._chunk_key(header, records)
    context = f"idempotency:import:{ISSUER}:{imports.OPERATION}:{key}"  # as registry.certificates.idempotency locks
    lock_id = int.from_bytes(hashlib.sha256(context.encode()).digest()[:8], "big", signed=True)
    async with app.state.sessions() as session, session.begin():  # another machine, its chunk under way
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
        code, out, err = await _import(path, database_url)
    assert code == 5, out + err
    assert "another import is issuing the same rows at this moment" in err
    assert "Idempotency-Key" not in err


# --- a database out of reach: one line, for every command ---------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["migrate"], ["clients", "create", "--role", "admin", "--name", "ops"], ["audit", "verify"]],
    ids=["migrate", "clients create", "audit verify"],
)
async def test_a_command_with_the_database_out_of_reach_says_so_in_one_line_and_exits_4(command: list[str]) -> None:
    code, out, err = await run_registry(*command, env=registry_env(NOWHERE))
    assert code == 4, err[-2000:]
    assert err.strip() == "error: the database cannot be reached", err[-2000:]
    assert out == ""


# --- a CSV without its header row ---------------------------------------------------------------------------------

ID_NUMBER = "11010519491231002X"
HEADERLESS = (
    f"title,ENG-EAI,associate_senior,张三,resident_id,{ID_NUMBER},2026-06-30,,2026-EAI-01\n"
    f"title,ENG-EAI,associate_senior,李四,resident_id,{resident_id()},2026-06-30,,2026-EAI-01\n"
)


async def test_an_upload_without_its_header_row_is_refused_without_echoing_the_identity_number(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    token = await ready_issuer(app, client)
    headers = {**bearer(token), "Content-Type": "text/csv", "Idempotency-Key": "no-header"}
    response = await leaves_no_trace(
        app, client.post("/v1/certificate-batches", content=HEADERLESS.encode(), headers=headers)
    )
    problem = assert_problem(
        response, 422, slug="batch-rejected", field="column 6", message="unknown column", secret=ID_NUMBER
    )
    unexpected = "unexpected: title, ENG-EAI, associate_senior, column 4, resident_id, column 6, column 7, column 8"
    assert unexpected in problem["detail"]
    assert "张三" not in response.text  # nor the holder's name, nor a date


async def test_an_import_without_its_header_row_is_refused_without_echoing_the_identity_number(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    await create_issuer(client, await admin_token(app, client))
    folder = _folder(tmp_path)
    path = folder / "noheader.csv"
    path.write_text(HEADERLESS, encoding="utf-8")
    code, out, err = await _import(path, database_url)
    assert code == 2, out + err
    assert "column 6: unknown column" in err
    assert ID_NUMBER not in out + err
    assert sorted(p.name for p in folder.iterdir()) == ["noheader.csv"]


@pytest.mark.parametrize(
    "shape",
    [ID_NUMBER, "110105194912310", "１１０１０５１９４９１２３１００２Ｘ"],
    ids=["18 digits", "15 digits", "full width"],
)
async def test_an_unknown_key_shaped_like_an_identity_number_is_not_echoed(
    app: FastAPI, client: httpx.AsyncClient, shape: str
) -> None:
    token = await ready_issuer(app, client)
    body = certificate_body()
    body["holder"] = {**body["holder"], shape: "x"}
    single = await leaves_no_trace(app, client.post("/v1/certificates", json=body, headers=bearer(token)))
    masked = f"holder.{shape[:2]}{'*' * (len(shape) - 4)}{shape[-2:]}"
    assert_problem(single, 422, field=masked, message="unknown field", secret=shape)
    headers = {**bearer(token), "Idempotency-Key": hashlib.sha256(shape.encode()).hexdigest()}
    batch = await leaves_no_trace(
        app, client.post("/v1/certificate-batches", json={"certificates": [body]}, headers=headers)
    )
    assert_problem(batch, 422, field=masked, message="unknown field", secret=shape)


# --- an empty file and the progress total -------------------------------------------------------------------------


async def test_an_empty_file_is_said_to_be_empty(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    await create_issuer(client, await admin_token(app, client))
    path = _folder(tmp_path) / "empty.csv"
    path.write_bytes(b"")
    code, out, err = await _import(path, database_url)
    assert code == 2, out + err
    assert "error: file: is empty" in err
    assert "missing" not in err


def test_the_progress_total_counts_a_last_row_without_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "roll.csv"
    path.write_bytes(b"cert_type,level\ntitle,senior\nskill,level_3")
    assert count_rows(path) == 2
    path.write_bytes(b"cert_type,level\ntitle,senior\n")
    assert count_rows(path) == 1
