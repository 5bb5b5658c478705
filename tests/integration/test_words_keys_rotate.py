"""`registry keys rotate` refuses a wrong combination of options in one line in the reader's language (the locale),
as every other command's refusals are said (tests/integration/test_cli_refusal_language.py), not in Typer's English
box ("Invalid value: give either --issuer CODE or --registry")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cli_support import registry_env, run_registry
from tests.integration.test_import_language import CHINESE, ENGLISH

REFUSALS = [
    ((), "错误：请给出 --issuer CODE 或 --registry，二者选一", "error: give either --issuer CODE or --registry"),
    (
        ("--issuer", "BJ-AI-COMMITTEE", "--registry"),
        "错误：请给出 --issuer CODE 或 --registry，二者选一",
        "error: give either --issuer CODE or --registry",
    ),
    (
        ("--registry", "--algorithm", "ES256"),
        "错误：--algorithm 只能是 Ed25519 或 ES256，且只能与 --issuer 一起使用",
        "error: --algorithm is Ed25519 or ES256, and only with --issuer",
    ),
    (
        ("--issuer", "BJ-AI-COMMITTEE", "--algorithm", "RS256"),
        "错误：--algorithm 只能是 Ed25519 或 ES256，且只能与 --issuer 一起使用",
        "error: --algorithm is Ed25519 or ES256, and only with --issuer",
    ),
]


@pytest.mark.parametrize(("options", "chinese", "english"), REFUSALS)
async def test_keys_rotate_refuses_its_options_in_the_locales_language(
    tmp_path: Path, options: tuple[str, ...], chinese: str, english: str
) -> None:
    """Found: under LANG=zh_CN.UTF-8, `registry keys rotate` without --issuer or --registry (or with --algorithm
    ES256 for the registry's key) printed Typer's English usage box."""
    env = registry_env(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")

    code, out, err = await run_registry("keys", "rotate", *options, env=env | CHINESE)

    assert code == 2, (out, err)
    assert err.strip() == chinese, err
    assert "Invalid value" not in err, err
    assert "Usage" not in err, err
    assert out == ""
    assert not (tmp_path / "registry.db").exists()  # refused before the database is looked at

    code, out, err = await run_registry("keys", "rotate", *options, env=env | ENGLISH)
    assert code == 2, (out, err)
    assert err.strip() == english, err
