"""The development master key file (``REGISTRY_DATA_DIR/master.key``, made when REGISTRY_MASTER_KEY is unset): it
appears whole or not at all, so processes starting together all end with the one key; a file that holds no key is a
clear refusal naming it; a file or folder other users can read is a warning, one they can write a refusal — naming
the path, the mode and the fix, never the key."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import stat
import sys
from pathlib import Path

import pytest

from registry.config import MASTER_KEY_FILE, Settings
from registry.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
STARTERS = 8
# One process starting: it draws its key slowly (a loaded machine, a slow disk), so the others reach the file while
# the first is still making it; each prints the key's hash, never the key.
STARTER = """
import hashlib, secrets, sys, time, types
from pathlib import Path

import registry.config

draw = secrets.token_hex
registry.config.secrets = types.SimpleNamespace(token_hex=lambda count: (time.sleep(0.5), draw(count))[1])
folder, go, ready = (Path(arg) for arg in sys.argv[1:])
ready.touch()
while not go.exists():
    time.sleep(0.002)
try:
    key = registry.config.Settings(env="development", data_dir=folder).master_key_bytes
except Exception as exc:
    print("failed:", type(exc).__name__, exc)
else:
    print(hashlib.sha256(key).hexdigest())
"""


def _key_text() -> str:
    return secrets.token_hex(32)


def _settings(folder: Path) -> Settings:
    return Settings(env="development", data_dir=folder)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    return folder


async def started_together(tmp_path: Path, starter: str, count: int) -> tuple[list[str], str]:
    """``count`` processes running ``starter`` on ``tmp_path/data``, each imported and waiting, then released at once:
    what each printed (its key's hash, or why it failed), and the hash of the key file left behind."""
    folder, go = tmp_path / "data", tmp_path / "go"
    env = {key: value for key, value in os.environ.items() if key != "REGISTRY_MASTER_KEY"}
    starters = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            starter,
            str(folder),
            str(go),
            str(tmp_path / f"ready-{number}"),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for number in range(count)
    ]
    for _ in range(600):  # every one imported and waiting, then all at once
        if all((tmp_path / f"ready-{number}").exists() for number in range(count)):
            break
        await asyncio.sleep(0.05)
    go.touch()
    said = [(await process.communicate())[0].decode().strip() for process in starters]
    kept = hashlib.sha256(bytes.fromhex((folder / MASTER_KEY_FILE).read_text(encoding="ascii"))).hexdigest()
    return said, kept


async def test_processes_starting_together_on_a_fresh_folder_all_end_with_one_key(tmp_path: Path) -> None:
    said, kept = await started_together(tmp_path, STARTER, STARTERS)
    assert said == [kept] * STARTERS, said
    folder = tmp_path / "data"
    assert [entry.name for entry in folder.iterdir()] == [MASTER_KEY_FILE]  # no draft left behind
    assert stat.S_IMODE((folder / MASTER_KEY_FILE).stat().st_mode) == 0o600


@pytest.mark.parametrize("content", ["", "\n", "ab" * 16 + "\n", "zz" * 32, "ab" * 33])
def test_a_key_file_without_a_whole_key_is_refused_by_name(tmp_path: Path, content: str) -> None:
    folder = _folder(tmp_path)
    key_file = folder / MASTER_KEY_FILE
    key_file.write_text(content, encoding="ascii")
    key_file.chmod(0o600)
    with pytest.raises(ConfigurationError, match="empty or damaged") as refused:
        _settings(folder).master_key_bytes  # noqa: B018
    assert str(key_file) in str(refused.value)
    assert "64 hexadecimal digits" in str(refused.value)
    if content.strip():
        assert content.strip() not in str(refused.value)  # never what the file holds
    assert key_file.read_text(encoding="ascii") == content  # left as found: it may be the only copy


def test_a_key_file_others_can_read_is_used_with_a_warning_that_never_shows_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _folder(tmp_path)
    key_file = folder / MASTER_KEY_FILE
    key = _key_text()
    key_file.write_text(key + "\n", encoding="ascii")
    key_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="registry.config"):
        assert _settings(folder).master_key_bytes == bytes.fromhex(key)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    said = warnings[0].getMessage()
    assert str(key_file) in said
    assert "0644" in said
    assert f"chmod 600 {key_file}" in said
    assert key not in caplog.text
    assert key.upper() not in caplog.text


def test_a_data_folder_others_can_enter_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _folder(tmp_path)
    folder.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="registry.config"):
        key = _settings(folder).master_key_bytes
    said = caplog.text
    assert f"{folder} is open to other users (mode 0755)" in said
    assert f"chmod 700 {folder}" in said
    assert key.hex() not in said
    assert stat.S_IMODE((folder / MASTER_KEY_FILE).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("file_mode", "folder_mode"),
    [(0o664, 0o700), (0o606, 0o700), (0o600, 0o770)],
    ids=["file-0664", "file-0606", "folder-0770"],
)
def test_a_key_file_or_folder_others_can_write_is_refused(tmp_path: Path, file_mode: int, folder_mode: int) -> None:
    folder = _folder(tmp_path)
    key_file = folder / MASTER_KEY_FILE
    key = _key_text()
    key_file.write_text(key + "\n", encoding="ascii")
    key_file.chmod(file_mode)
    folder.chmod(folder_mode)
    with pytest.raises(ConfigurationError, match="can be written by other users") as refused:
        _settings(folder).master_key_bytes  # noqa: B018
    open_one, private = (folder, "700") if folder_mode != 0o700 else (key_file, "600")
    assert f"chmod {private} {open_one}" in str(refused.value)
    assert key not in str(refused.value)
