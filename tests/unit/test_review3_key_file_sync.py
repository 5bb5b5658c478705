"""Review of 79bed2a..e5fb10c: a development master key written in place whose sync fails once it is whole is kept,
for another process starting together may have read it already and sealed under it (79bed2a removed it)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from registry.config import MASTER_KEY_FILE, development_master_key
from registry.errors import ConfigurationError
from tests.unit.test_master_key_file import _folder
from tests.unit.test_review_master_key_file import _no_link


def test_a_whole_key_written_in_place_whose_sync_fails_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _folder(tmp_path)
    path = folder / MASTER_KEY_FILE
    fsync = os.fsync
    read_meanwhile: list[str] = []

    def sync_fails(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(f"/{MASTER_KEY_FILE}"):
            read_meanwhile.append(path.read_text(encoding="ascii"))  # another process starting now reads it whole
            raise OSError(errno.EIO, "Input/output error")
        fsync(fd)

    monkeypatch.setattr(os, "link", _no_link)
    monkeypatch.setattr(os, "fsync", sync_fails)
    with pytest.raises(ConfigurationError) as refused:
        development_master_key(folder)
    assert "cannot be made or read (Input/output error)" in str(refused.value)
    monkeypatch.undo()
    [key_read] = read_meanwhile
    assert len(key_read.strip()) == 64
    # The key the other process read (and may have sealed the database under) is the one the next start reads.
    assert path.read_text(encoding="ascii") == key_read
    assert development_master_key(folder).hex() + "\n" == key_read
