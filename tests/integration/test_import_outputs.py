"""`registry import` and its output files: two imports that would write the same outputs (roll.txt beside roll.csv
share roll.issued.csv) never run at once, and a rejected row's reasons are said in the reader's language (--lang, or
the locale) on a first run and on a re-run alike, even from an outcome stored before reasons were kept as messages.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from cli.main import reader_language
from registry.certificates import imports
from registry.certificates.models import IdempotencyRecord
from registry.db import transaction
from tests.factories import admin_token, create_issuer, resident_id
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.test_import import HEADER

ISSUER = "BJ-AI-COMMITTEE"
CHECK_CHARACTER_ZH = "校验码不符"


def _write(
    path: Path,
    count: int,
    *,
    start: int = 0,
    bad: frozenset[int] = frozenset(),
    bad_level: frozenset[int] = frozenset(),
) -> None:
    """``count`` rows of distinct holders (from ``start``); the rows in ``bad`` have a mistyped identity number, those
    in ``bad_level`` a level no title has."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(start, start + count):
            number = resident_id(sequence=i, birth="19900101")
            if i - start in bad:
                number = number[:-1] + ("0" if number[-1] != "0" else "1")
            level = "grandmaster" if i - start in bad_level else "intermediate"
            writer.writerow(["title", "ENG-AI", level, f"导入{i}", "resident_id", number, "2026-05-01", "", "B"])


async def _folder(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path) -> Path:
    """The body registered, and a folder of its own for the files (a SQLite test database lives in tmp_path)."""
    await create_issuer(client, await admin_token(app, client))
    folder = tmp_path / "import"
    folder.mkdir()
    return folder


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


async def _certificates(app: FastAPI) -> int:
    async with transaction(app.state.sessions) as session:
        return int((await session.execute(text("SELECT count(*) FROM certificates"))).scalar_one())


async def _import(path: Path, database_url: str, *options: str, **env: str) -> tuple[int, str, str]:
    command = ("import", str(path), "--issuer", ISSUER, *options)
    return await run_registry(*command, env={**registry_env(database_url), **env})


# --- two imports writing the same outputs -------------------------------------------------------------------------


async def test_importing_roll_csv_while_roll_txt_is_imported_exits_5_naming_it_and_touches_nothing(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    folder = await _folder(app, client, tmp_path)
    first, second = folder / "roll.txt", folder / "roll.csv"
    _write(first, 3)
    _write(second, 2, start=100)
    running = await imports.prepare(app.state.sessions, path=first, issuer_code=ISSUER)  # under way

    code, out, err = await _import(second, database_url)
    assert code == 5, out + err
    said = " ".join(err.split())
    assert f"another registry import, of {first}, is writing {folder / 'roll.issued.csv'}" in said
    assert _listing(folder) == [".roll.issued.csv.lock", "roll.csv", "roll.txt"]
    assert await _certificates(app) == 0

    summary = await imports.import_rows(app.state.context, app.state.sessions, running)
    assert (summary.issued, summary.rejected) == (3, 0)
    first_codes = _rows(folder / "roll.issued.csv")
    assert len(first_codes) == 4  # every claim code of the first, nothing of the second
    assert _listing(folder) == ["roll.csv", "roll.issued.csv", "roll.rejected.csv", "roll.txt"]

    code, out, err = await _import(second, database_url)  # once the first has ended, the second runs
    assert code == 0, out + err
    assert _rows(folder / "roll.issued.csv.1") == first_codes  # the first's claim codes, kept
    assert len(_rows(folder / "roll.issued.csv")) == 3
    assert await _certificates(app) == 5


async def test_a_second_import_of_the_same_file_is_still_refused_as_the_same_file(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    _write(path, 2)
    running = await imports.prepare(app.state.sessions, path=path, issuer_code=ISSUER)
    try:
        code, out, err = await _import(path, database_url)
    finally:
        running.lock.release()
    assert code == 5, out + err
    assert f"another registry import of {path} is running" in err
    code, out, err = await _import(path, database_url)  # the lock released, the file imports
    assert code == 0, out + err


async def test_a_lock_file_a_crashed_import_left_behind_locks_nothing(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    _write(path, 2)
    imports.lock_file(path).write_text("/elsewhere/roll.txt\n")
    code, out, err = await _import(path, database_url)
    assert code == 0, out + err
    assert not imports.lock_file(path).exists()


async def test_a_symbolic_link_at_the_lock_file_is_refused_and_its_target_left_alone(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    folder = await _folder(app, client, tmp_path)
    path = folder / "roll.csv"
    _write(path, 2)
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me\n")
    imports.lock_file(path).symlink_to(target)
    code, out, err = await _import(path, database_url)
    assert code == 2, out + err
    assert "is a symbolic link" in err
    assert target.read_text() == "keep me\n"
    assert await _certificates(app) == 0


async def test_two_imports_with_the_same_outputs_started_at_once_never_lose_a_claim_code(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    folder = await _folder(app, client, tmp_path)
    _write(folder / "roll.csv", 40)
    _write(folder / "roll.txt", 40, start=100)
    runs = await asyncio.gather(*(_import(folder / name, database_url) for name in ("roll.csv", "roll.txt")))

    codes = sorted(code for code, _out, _err in runs)
    assert codes in ([0, 0], [0, 5]), runs  # one after the other, or the second refused: never both writing at once
    for code, _out, err in runs:
        if code == 5:
            assert "another registry import" in err
    written = [path for path in folder.iterdir() if path.name.startswith("roll.issued.csv")]
    claim_codes = [row[3] for path in written for row in _rows(path)[1:]]
    assert len(claim_codes) == len(set(claim_codes)) == await _certificates(app)  # each in a file, once
    assert not imports.lock_file(folder / "roll.csv").exists()


# --- reasons in the reader's language ------------------------------------------------------------------------------


def _reasons(path: Path) -> list[str]:
    return [row[len(HEADER) + 1] for row in _rows(path.with_suffix(".rejected.csv"))[1:]]


async def test_a_chinese_import_says_its_rejected_rows_reasons_in_chinese_on_a_first_run_and_a_rerun(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    _write(path, 4, bad=frozenset({1}), bad_level=frozenset({2}))

    code, out, err = await _import(path, database_url, "--lang", "zh")
    assert code == 3, out + err
    first = _reasons(path)
    assert first[0] == f"holder.id_number：{CHECK_CHARACTER_ZH}：号码中有字符输入错误，请对照证件核对"
    assert first[1] == "level：grandmaster 不是职称的等级"  # a message with values (the type too), said in Chinese

    code, out, err = await _import(path, database_url, "--lang", "zh")  # replayed from the stored outcome
    assert code == 3, out + err
    assert "此前已签发 2" in out  # the summary in Chinese too
    assert _reasons(path) == first

    code, out, err = await _import(path, database_url)  # English, as before, from the same stored outcome
    assert code == 3, out + err
    english = _reasons(path)
    assert (
        english[0] == "holder.id_number: check character is wrong: a character of the number is mistyped; compare "
        "it with the document"
    )
    assert english[1] == "level: grandmaster is not a title level"


async def test_the_locale_chooses_chinese_and_errors_are_said_in_it_too(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    folder = await _folder(app, client, tmp_path)
    path = folder / "roll.csv"
    _write(path, 2, bad=frozenset({0}))
    code, out, err = await _import(path, database_url, LANG="zh_CN.UTF-8", LC_ALL="")
    assert code == 3, out + err
    assert CHECK_CHARACTER_ZH in _reasons(path)[0]

    running = await imports.prepare(app.state.sessions, path=path, issuer_code=ISSUER)
    try:
        code, out, err = await _import(path, database_url, LANG="zh_CN.UTF-8", LC_ALL="")
    finally:
        running.lock.release()
    assert code == 5, out + err
    assert f"另一个 registry import 正在导入 {path}" in err

    headless = folder / "headless.csv"
    headless.write_text("cert_type,level\ntitle,senior\n", encoding="utf-8")
    code, out, err = await _import(headless, database_url, "--lang", "zh-CN")
    assert code == 2, out + err
    assert "catalogue_code：CSV 表头中缺少此列" in err, err  # the header's missing columns, named in Chinese


@pytest.mark.parametrize(
    ("option", "environ", "expected"),
    [
        (None, {"LANG": "zh_CN.UTF-8"}, "zh"),
        (None, {"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
        (None, {"LC_MESSAGES": "zh_TW", "LANG": "C.UTF-8"}, "zh"),
        (None, {"LANG": "C.UTF-8"}, "en"),
        (None, {}, "en"),
        ("zh", {"LANG": "en_GB.UTF-8"}, "zh"),
        ("EN", {"LANG": "zh_CN.UTF-8"}, "en"),
    ],
)
def test_the_command_speaks_the_language_asked_for_else_the_locales(
    option: str | None, environ: dict[str, str], expected: str
) -> None:
    assert reader_language(option, environ) == expected


async def _rewrite_stored_outcomes_as_before(app: FastAPI) -> int:
    """Every import chunk's stored outcome rewritten as it was stored before reasons were kept as messages: each
    reason the English text "field: message". How many reasons were rewritten."""
    box, rewritten = app.state.context.box, 0
    async with transaction(app.state.sessions) as session:
        records = (await session.execute(select(IdempotencyRecord))).scalars().all()
        for record in records:
            if record.operation != imports.OPERATION:
                continue
            context = f"idempotency:{record.client_id}:{record.operation}:{record.key}"
            outcome: dict[str, Any] = orjson.loads(box.decrypt(record.response_encrypted, context=context))
            for _row, reasons in outcome["rejected"]:
                for index, reason in enumerate(reasons):
                    english = imports._reason(reason)[1]
                    reasons[index] = str(english)
                    rewritten += 1
            record.response_encrypted = box.encrypt(orjson.dumps(outcome), context=context)
            session.add(record)
    return rewritten


async def test_an_outcome_stored_in_english_text_before_is_still_replayed_in_either_language(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    _write(path, 3, bad=frozenset({2}), bad_level=frozenset({1}))
    code, out, err = await _import(path, database_url)
    assert code == 3, out + err
    english = _reasons(path)
    assert await _rewrite_stored_outcomes_as_before(app) == 2

    code, out, err = await _import(path, database_url)
    assert code == 3, out + err
    assert "already issued 1" in out
    assert "holder.id_number" in out
    assert _reasons(path) == english  # word for word as before

    code, out, err = await _import(path, database_url, "--lang", "zh")
    assert code == 3, out + err
    chinese = _reasons(path)
    assert chinese[0] == english[0].replace(": ", "：", 1)  # its values are lost in the text: said as it was
    assert chinese[1].startswith(f"holder.id_number：{CHECK_CHARACTER_ZH}")  # a message without values: in Chinese
