"""`--lang` given twice: the command speaks the last one (Click keeps an option's last value), and so must its usage
errors. Found: `registry import --lang en --lang zh … --bogus` refused the unknown option in English inside Typer's
box, while the same command's other refusals came in Chinese (and the other way round)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.cli_support import run_registry
from tests.integration.test_cli_refusal_language import cli_env
from tests.integration.test_cli_usage_language import C_LOCALE
from tests.integration.test_import_language import ISSUER


async def test_the_last_lang_given_says_the_usage_error_as_it_says_the_rest(tmp_path: Path) -> None:
    args = ("import", "roll.csv", "--issuer", ISSUER, "--bogus")
    code, out, err = await run_registry(
        *args[:4], "--lang", "en", "--lang", "zh", args[4], env=cli_env(tmp_path, C_LOCALE)
    )
    assert (code, out) == (2, ""), err
    assert err.strip().splitlines()[0] == "错误：没有这个选项：--bogus", err

    code, out, err = await run_registry(*args[:4], "--lang=zh", "--lang=en", args[4], env=cli_env(tmp_path, C_LOCALE))
    assert (code, out) == (2, ""), err
    assert "No such option: --bogus" in err, err
    assert "错误" not in err, err
