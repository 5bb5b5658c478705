"""`registry import` speaks one language throughout: with `--lang zh` (or a Chinese locale) its progress bar, its
summary, the files it names and the backups it keeps are said in Chinese, as its rejected rows' reasons are; without
one (an English locale) every line stays as it was, and `--lang en` gives that English form under a Chinese locale.
The other commands' lines for people follow the locale too."""

from __future__ import annotations

import csv
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.factories import admin_token, create_issuer, resident_id
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.test_import import HEADER
from tools import messages

ISSUER = "BJ-AI-COMMITTEE"
ENGLISH = {"LANG": "C.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""}
CHINESE = {"LANG": "zh_CN.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""}


async def _roll(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path, *, rows: int, bad: int | None) -> Path:
    """The body registered, and ``rows`` rows of distinct holders in a folder of their own; row ``bad`` (0-based) has
    a mistyped identity number."""
    await create_issuer(client, await admin_token(app, client))
    folder = tmp_path / "import"
    folder.mkdir()
    path = folder / "roll.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            number = resident_id(sequence=i, birth="19900101")
            if i == bad:
                number = number[:-1] + ("0" if number[-1] != "0" else "1")
            cells = ["title", "ENG-AI", "intermediate", f"导入{i}", "resident_id", number, "2026-05-01", "", "B"]
            writer.writerow(cells)
    return path


async def _import(path: Path, database_url: str, *options: str, locale: dict[str, str]) -> tuple[int, str, str]:
    return await run_registry(
        "import", str(path), "--issuer", ISSUER, *options, env=registry_env(database_url) | locale
    )


async def test_a_chinese_import_says_its_progress_and_summary_in_chinese_and_an_english_one_in_english(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path, rows=3, bad=1)

    code, out, err = await _import(path, database_url, "--lang", "zh", locale=ENGLISH)
    assert code == 3, out + err  # the exit codes are the same in either language
    assert "共 3 行  新签发 2  此前已签发 0  拒收 1  用时 " in out, out
    assert "秒（每秒 " in out, out
    assert " 行）" in out, out
    assert f"已签发的证书（含领取码）：{path.with_suffix('.issued.csv')}" in out, out
    assert f"被拒收的行及原因：{path.with_suffix('.rejected.csv')}" in out, out
    assert "正在导入" in out, out  # the progress bar
    assert "行/秒" in out, out
    english = ("rows/s", "already issued", "importing", "issued certificates")
    assert not [line for line in english if line in out], out

    code, out, err = await _import(path, database_url, locale=ENGLISH)  # a re-run in English: as it always was
    assert code == 3, out + err
    assert "rows 3  issued 0  already issued 2  rejected 1  in " in out, out
    assert f"issued certificates (with claim codes): {path.with_suffix('.issued.csv')}" in out, out
    assert f"rejected rows with reasons: {path.with_suffix('.rejected.csv')}" in out, out
    assert "the earlier roll.issued.csv is kept as roll.issued.csv.1; a new one is written" in err, err
    assert "共" not in out + err, out + err


async def test_the_locale_chooses_chinese_lines_and_lang_en_keeps_the_english_summary_for_scripts(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = await _roll(app, client, tmp_path, rows=2, bad=None)

    code, out, err = await _import(path, database_url, locale=CHINESE)
    assert code == 0, out + err
    assert "共 2 行  新签发 2  此前已签发 0  拒收 0" in out, out

    code, out, err = await _import(path, database_url, locale=CHINESE)  # a re-run keeps the first run's files
    assert code == 0, out + err
    assert "共 2 行  新签发 0  此前已签发 2  拒收 0" in out, out
    assert "此前的 roll.issued.csv 已保留为 roll.issued.csv.1；另写一份新文件" in err, err
    assert "此前的 roll.rejected.csv 已保留为 roll.rejected.csv.1；另写一份新文件" in err, err

    code, out, err = await _import(path, database_url, "--lang", "en", locale=CHINESE)
    assert code == 0, out + err
    assert "rows 2  issued 0  already issued 2  rejected 0  in " in out, out
    assert "the earlier roll.issued.csv is kept as roll.issued.csv.2; a new one is written" in err, err


async def test_a_chinese_import_says_its_configuration_error_in_chinese(tmp_path: Path) -> None:
    path = tmp_path / "roll.csv"
    path.write_text(",".join(HEADER) + "\n", encoding="utf-8")
    env = registry_env(f"sqlite+aiosqlite:///{tmp_path}/registry.db") | {"REGISTRY_DATABASE_URL": "sqlite:///r.db"}
    code, out, err = await run_registry("import", str(path), "--issuer", ISSUER, "--lang", "zh", env=env | ENGLISH)
    assert code == 2, out + err
    (line,) = err.splitlines()
    assert line.startswith("配置错误：REGISTRY_DATABASE_URL："), line

    code, out, err = await run_registry("import", str(path), "--issuer", ISSUER, env=env | ENGLISH)
    assert code == 2, out + err
    assert err.startswith("configuration error: REGISTRY_DATABASE_URL: "), err


async def test_migrate_and_audit_verify_speak_the_locales_language(database_url: str) -> None:
    code, out, err = await run_registry("migrate", env=registry_env(database_url) | CHINESE)
    assert code == 0, out + err
    assert "数据库已是最新版本" in err, err

    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url) | CHINESE)
    assert code == 0, out + err
    assert "审计链完整：共 " in out, out
    assert "透明日志完整：共 " in out, out
    assert "证书状态与其历史记录及状态列表一致" in out, out

    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url) | ENGLISH)
    assert code == 0, out + err
    assert "audit chain intact: " in out, out
    assert "transparency log intact: " in out, out


def test_the_catalogue_check_reads_what_the_commands_say() -> None:
    """tools/messages.py (and tests/unit/test_i18n.py through it) finds the commands' messages, so a line a command
    says without a Chinese entry is caught."""
    found = messages.extract()
    assert "cli/imports.py" in found["rejected rows with reasons: {path}"]
    assert "cli/database.py" in found["database is at the latest revision"]
    assert "cli/main.py" in found["give either --issuer CODE or --registry"]
