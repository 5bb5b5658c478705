"""A `registry` command that refuses its arguments says so in one line in the reader's language (`--lang`, else the
locale), as README promises, never in Typer's English box nor with Python's or pydantic's own English words: a file to
import that is missing or a folder, an unknown `--region` for `clients create`, a credential file that cannot be read.
The reasons the system gives for a file (no such file, a directory, permission denied) are said from one place,
registry/os_reasons.py."""

from __future__ import annotations

from pathlib import Path

from tests.integration.cli_support import registry_env, run_registry
from tests.integration.test_import_language import CHINESE, ENGLISH, ISSUER
from tests.integration.test_languages import HAN


def cli_env(tmp_path: Path, locale: dict[str, str]) -> dict[str, str]:
    return registry_env(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}") | locale


async def test_import_of_a_file_that_does_not_exist_says_so_in_the_language_asked_for(tmp_path: Path) -> None:
    """Found: `registry import missing.csv --issuer X --lang zh` answered with Typer's English box ("Invalid value
    for 'file': file '…' does not exist.") although README promises the command's errors in the reader's language,
    `--lang zh` first, and an empty file is refused in Chinese ("错误：file：为空")."""
    missing = tmp_path / "missing.csv"

    code, out, err = await run_registry(
        "import", str(missing), "--issuer", ISSUER, "--lang", "zh", env=cli_env(tmp_path, ENGLISH)
    )

    assert code == 2, (out, err)
    assert err.strip() == f"错误：{missing}：无法读取：文件或目录不存在", err
    assert not (tmp_path / "registry.db").exists()  # refused before the database is looked at

    code, out, err = await run_registry("import", str(missing), "--issuer", ISSUER, env=cli_env(tmp_path, ENGLISH))
    assert code == 2, (out, err)
    assert err.strip() == f"error: {missing}: cannot be read: no such file or directory", err


async def test_import_of_a_directory_says_so_in_the_language_asked_for(tmp_path: Path) -> None:
    """Found: the same for a folder given as the file: "Invalid value for 'file': file '…' is a directory."."""
    code, out, err = await run_registry(
        "import", str(tmp_path), "--issuer", ISSUER, "--lang", "zh", env=cli_env(tmp_path, ENGLISH)
    )

    assert code == 2, (out, err)
    assert "is a directory" not in err, err
    assert "Invalid value" not in err, err
    assert err.strip() == f"错误：{tmp_path}：无法读取：是一个目录", err


async def test_clients_create_with_an_unknown_region_is_one_line_in_the_locales_language(tmp_path: Path) -> None:
    """Found: in a Chinese locale `registry clients create --role bogus` answers one Chinese line
    ("role：必须是以下之一：…"), but `--region XX` answered Typer's English box with pydantic's own words leaking
    ("Invalid value for '--region': Value error, 'XX' is not one of 'BJ', 'TJ', 'HE'.")."""
    role_code, _out, role_err = await run_registry(
        "clients", "create", "--role", "bogus", "--name", "x", env=cli_env(tmp_path, CHINESE)
    )
    assert role_code == 2, role_err
    assert role_err.strip().startswith("role："), role_err  # the way every other option is refused

    code, out, err = await run_registry(
        "clients", "create", "--role", "partner", "--name", "x", "--region", "XX", env=cli_env(tmp_path, CHINESE)
    )

    assert code == 2, (out, err)
    assert "Value error" not in err, err
    assert "Invalid value" not in err, err
    assert err.strip() == "region：必须是以下之一：BJ, TJ, HE", err


async def test_clients_create_with_an_unknown_region_in_english_names_the_option_plainly(tmp_path: Path) -> None:
    """Found: in English too the refusal carried pydantic's "Value error, " prefix inside a Typer box, where
    `--role bogus` says "role: must be one of: admin, issuer, partner, holder"."""
    code, out, err = await run_registry(
        "clients", "create", "--role", "partner", "--name", "x", "--region", "XX", env=cli_env(tmp_path, ENGLISH)
    )

    assert code == 2, (out, err)
    assert "Value error" not in err, err
    assert err.strip() == "region: must be one of: BJ, TJ, HE", err


async def test_verify_credential_of_a_missing_file_is_one_line_all_in_the_locales_language(tmp_path: Path) -> None:
    """Found: in a Chinese locale `registry verify-credential missing.jwt` printed "错误：input … cannot be read:
    [Errno 2] No such file or directory: '…'": the prefix said in Chinese (cli ``said``), the problem itself an
    English f-string from registry/credentials/sources.py with Python's errno text."""
    missing = tmp_path / "missing.jwt"

    code, out, err = await run_registry("verify-credential", str(missing), env=cli_env(tmp_path, CHINESE))

    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert HAN.search(err), err
    assert "cannot be read" not in err, err
    assert "No such file" not in err, err
    assert err.strip() == f"错误：输入 {missing} 无法读取：文件或目录不存在", err

    code, out, err = await run_registry("verify-credential", str(missing), env=cli_env(tmp_path, ENGLISH))
    assert code == 2, (out, err)
    assert err.strip() == f"error: input {missing} cannot be read: no such file or directory", err
