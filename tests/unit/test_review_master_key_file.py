"""The development master key file where the usual path does not hold: a data folder on a filesystem without hard
links (some network, FUSE and FAT mounts: ``os.link`` fails EPERM), processes starting together there, and a
``master.key`` that is a dangling link or not a regular file. Start-up works, or fails saying which file and why —
never a bare traceback, never a hang, never the key."""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from registry.config import MASTER_KEY_FILE
from registry.errors import ConfigurationError
from tests.unit.test_master_key_file import _folder, _settings, started_together

ROOT = Path(__file__).resolve().parents[2]
STARTERS = 6
# One process starting on a folder without hard links: its key is written in place, slowly (a loaded machine), so
# the others find the file made but not yet written. Prints the key's hash, never the key.
STARTER = """
import errno, hashlib, os, sys, time
from pathlib import Path

import registry.config

def no_link(*args, **kwargs):
    raise OSError(errno.EPERM, "Operation not permitted")

write = os.write
os.link = no_link
os.write = lambda fd, data: (time.sleep(0.3), write(fd, data))[1]
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
FIFO_READER = """
import sys
from pathlib import Path

import registry.config

try:
    registry.config.Settings(env="development", data_dir=Path(sys.argv[1])).master_key_bytes
except Exception as exc:
    print("failed:", type(exc).__name__, exc)
else:
    print("read")
"""


def _no_link(*args: object, **kwargs: object) -> None:
    raise OSError(errno.EPERM, "Operation not permitted")


def test_a_folder_without_hard_links_still_gets_a_private_key_and_no_draft(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "data"
    monkeypatch.setattr(os, "link", _no_link)
    key = _settings(folder).master_key_bytes
    key_file = folder / MASTER_KEY_FILE
    assert bytes.fromhex(key_file.read_text(encoding="ascii")) == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [entry.name for entry in folder.iterdir()] == [MASTER_KEY_FILE]
    assert _settings(folder).master_key_bytes == key  # the next start reads the same key


async def test_processes_starting_together_without_hard_links_all_end_with_one_key(tmp_path: Path) -> None:
    said, kept = await started_together(tmp_path, STARTER, STARTERS)
    assert said == [kept] * STARTERS, said
    assert [entry.name for entry in (tmp_path / "data").iterdir()] == [MASTER_KEY_FILE]


def test_a_key_file_only_just_made_is_waited_for_until_whole(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    key_file = folder / MASTER_KEY_FILE
    key = secrets.token_hex(32)
    key_file.touch(mode=0o600)  # made by another process that has not written yet

    def write_later() -> None:
        time.sleep(0.2)
        with key_file.open("a", encoding="ascii") as handle:
            handle.write(key + "\n")

    writer = threading.Thread(target=write_later)
    writer.start()
    try:
        assert _settings(folder).master_key_bytes == bytes.fromhex(key)
    finally:
        writer.join()


def test_an_old_empty_key_file_is_refused_at_once(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    key_file = folder / MASTER_KEY_FILE
    key_file.touch(mode=0o600)
    os.utime(key_file, (time.time() - 3600, time.time() - 3600))
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="empty or damaged"):
        _settings(folder).master_key_bytes  # noqa: B018
    assert time.monotonic() - started < 0.5


def test_a_dangling_key_link_is_a_configuration_error_naming_the_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    key_file = folder / MASTER_KEY_FILE
    key_file.symlink_to(tmp_path / "moved-away.key")
    with pytest.raises(ConfigurationError, match="cannot be made or read") as refused:
        _settings(folder).master_key_bytes  # noqa: B018
    assert str(key_file) in str(refused.value)
    assert "REGISTRY_MASTER_KEY" in str(refused.value)
    assert key_file.is_symlink()  # left as found
    assert not (tmp_path / "moved-away.key").exists()  # nothing written through it


def test_a_key_link_to_a_private_file_of_ones_own_is_followed(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    kept = tmp_path / "kept.key"
    key = secrets.token_hex(32)
    kept.write_text(key + "\n", encoding="ascii")
    kept.chmod(0o600)
    (folder / MASTER_KEY_FILE).symlink_to(kept)
    assert _settings(folder).master_key_bytes == bytes.fromhex(key)


def test_a_key_path_that_is_a_folder_is_a_configuration_error(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / MASTER_KEY_FILE).mkdir()
    with pytest.raises(ConfigurationError) as refused:
        _settings(folder).master_key_bytes  # noqa: B018
    assert str(folder / MASTER_KEY_FILE) in str(refused.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
async def test_a_key_path_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    os.mkfifo(folder / MASTER_KEY_FILE, 0o600)
    env = {key: value for key, value in os.environ.items() if key != "REGISTRY_MASTER_KEY"}
    reader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FIFO_READER, str(folder), cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        out, _ = await asyncio.wait_for(reader.communicate(), timeout=20)
    except TimeoutError:
        reader.kill()
        await reader.wait()
        pytest.fail("start-up hung opening a FIFO as the master key file")
    said = out.decode().strip()
    assert said.startswith("failed: ConfigurationError"), said
    assert "is not a regular file" in said
    assert str(folder / MASTER_KEY_FILE) in said
