"""A `registry` command given the wrong arguments says so in the reader's language (`--lang`, else the locale), as its
other refusals are said, and exits 2: a missing argument or option, an unknown option or command, a value of the wrong
type. Found: under `LANG=zh_CN.UTF-8` these came in Click's English inside Typer's box ("Missing argument 'file'.",
"No such option: --bogus", "Invalid value for '--port': Input should be a valid integer…"). In English the box is
left exactly as Typer draws it."""

from __future__ import annotations

from pathlib import Path

from tests.integration.cli_support import run_registry
from tests.integration.test_cli_refusal_language import cli_env
from tests.integration.test_import_language import CHINESE, ENGLISH, ISSUER
from tests.integration.test_languages import HAN

C_LOCALE = {"LC_ALL": "C", "LANG": "", "LC_MESSAGES": ""}


async def _refused(tmp_path: Path, *args: str, locale: dict[str, str]) -> list[str]:
    """The lines `registry <args>` refused its arguments with (it exits 2, before the database is looked at)."""
    code, out, err = await run_registry(*args, env=cli_env(tmp_path, locale))
    assert code == 2, (out, err)
    assert out == "", out
    assert not (tmp_path / "registry.db").exists()
    return err.strip().splitlines()


async def test_an_import_without_its_file_names_the_missing_argument_in_chinese(tmp_path: Path) -> None:
    lines = await _refused(tmp_path, "import", "--issuer", ISSUER, locale=CHINESE)

    assert lines[0] == "错误：缺少参数 FILE", lines
    assert lines[1].startswith("用法请运行："), lines
    assert lines[1].endswith(" import --help"), lines
    assert len(lines) == 2, lines


async def test_an_import_without_its_issuer_names_the_missing_option_in_chinese(tmp_path: Path) -> None:
    lines = await _refused(tmp_path, "import", "roll.csv", locale=CHINESE)

    assert lines[0] == "错误：缺少选项 --issuer", lines


async def test_an_unknown_option_is_named_in_chinese_with_the_one_meant(tmp_path: Path) -> None:
    lines = await _refused(tmp_path, "import", "roll.csv", "--issuer", ISSUER, "--bogus", locale=CHINESE)
    assert lines[0] == "错误：没有这个选项：--bogus", lines

    lines = await _refused(tmp_path, "keys", "rotate", "--algo", "ES256", locale=CHINESE)
    assert lines[0] == "错误：没有这个选项：--algo（是否想用 --algorithm？）", lines


async def test_a_value_of_the_wrong_type_says_what_is_expected_in_chinese(tmp_path: Path) -> None:
    lines = await _refused(tmp_path, "serve", "--port", "eighty", locale=CHINESE)

    assert lines[0] == "错误：--port 的值无效：必须是整数", lines
    assert "Input should be" not in "\n".join(lines), lines


async def test_an_option_without_its_value_an_unknown_command_and_extra_arguments_are_said_in_chinese(
    tmp_path: Path,
) -> None:
    assert (await _refused(tmp_path, "import", "roll.csv", "--issuer", locale=CHINESE))[0] == (
        "错误：选项 --issuer 需要一个值"
    )
    command = await _refused(tmp_path, "imprt", locale=CHINESE)
    assert command[0] == "错误：没有这个命令：'imprt'（是否想用 'import'？）", command
    extra = await _refused(tmp_path, "import", "roll.csv", "more.csv", "--issuer", ISSUER, locale=CHINESE)
    assert extra[0] == "错误：多余的参数：more.csv", extra
    assert (await _refused(tmp_path, "keys", "rotate", "--registry=yes", locale=CHINESE))[0] == (
        "错误：选项 --registry 不接受值"
    )


async def test_a_lang_that_is_neither_zh_nor_en_is_refused_in_the_locales_language(tmp_path: Path) -> None:
    lines = await _refused(tmp_path, "import", "roll.csv", "--issuer", ISSUER, "--lang", "fr", locale=CHINESE)

    assert lines[0] == "错误：--lang 的值无效：'fr'：请给出 zh 或 en", lines


async def test_lang_zh_asks_for_chinese_usage_errors_under_an_english_locale_and_lang_en_for_english(
    tmp_path: Path,
) -> None:
    lines = await _refused(tmp_path, "import", "roll.csv", "--bogus", "--lang", "zh", locale=ENGLISH)
    assert lines[0] == "错误：没有这个选项：--bogus", lines

    lines = await _refused(tmp_path, "import", "roll.csv", "--bogus", "--lang=en", locale=CHINESE)
    assert "No such option: --bogus" in "\n".join(lines), lines
    assert not HAN.search("\n".join(lines)), lines


async def test_in_the_c_locale_usage_errors_stay_in_typers_english_box(tmp_path: Path) -> None:
    lines = await _refused(tmp_path, "import", "--issuer", ISSUER, locale=C_LOCALE)

    assert lines[0].startswith("Usage: "), lines
    assert lines[0].endswith(" import [OPTIONS] {file}"), lines
    assert lines[1].endswith(" import --help' for help."), lines
    assert lines[2].startswith("╭─ Error ─"), lines
    assert lines[3].startswith("│ Missing argument 'file'."), lines
    assert lines[3].endswith("│"), lines


async def test_a_command_given_nothing_still_shows_its_help_in_a_chinese_locale(tmp_path: Path) -> None:
    code, out, err = await run_registry("clients", env=cli_env(tmp_path, CHINESE))

    assert code == 2, (out, err)
    assert "Usage:" in out, out
    assert "create" in out, out
    assert "错误" not in out + err, out + err
