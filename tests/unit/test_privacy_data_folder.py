"""The embedded default's data folder (./.registry/: the SQLite database and the generated development master key)
is its owner's alone: the key file is never readable by another user, not even for the moment it is being written,
and a folder the registry creates for them is closed to others (the database holds verification tokens and names)."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.config import MASTER_KEY_FILE, Settings
from registry.db import create_engine


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems start a service with: files 0644, folders 0755 unless the code says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("usual_umask")
def test_the_generated_master_key_is_never_readable_by_others_while_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "data"
    key_file = folder / MASTER_KEY_FILE
    seen: list[int | None] = []
    draw = secrets.token_hex

    def drawn_while_watching(count: int) -> str:
        seen.append(_mode(key_file) if key_file.exists() else None)  # the file may already be open for writing
        return draw(count)

    monkeypatch.setattr(secrets, "token_hex", drawn_while_watching)  # as registry.config draws it
    key = Settings(env="development", data_dir=folder).master_key_bytes
    assert len(key) == 32
    assert seen
    assert all(mode in (None, 0o600) for mode in seen), [oct(m) if m else m for m in seen]
    assert _mode(key_file) == 0o600
    assert _mode(folder) == 0o700


@pytest.mark.usefixtures("usual_umask")
async def test_a_folder_created_for_the_sqlite_database_is_closed_to_other_users(tmp_path: Path) -> None:
    folder = tmp_path / ".registry"
    engine = create_engine(f"sqlite+aiosqlite:///{folder / 'registry.db'}")
    await engine.dispose()
    assert _mode(folder) == 0o700
