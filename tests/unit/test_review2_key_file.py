"""Review of the development master key file written in place (no hard links): a reader must not take the file's
mtime at its word (FAT keeps it in 2 s steps, a network mount's comes from the server's clock), a short write must
not leave a short key, and a write that fails must not leave an empty file the next start calls damaged."""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import signal
import threading
import time
from pathlib import Path

import pytest

from registry.config import KEY_FILE_SETTLE_SECONDS, MASTER_KEY_FILE, development_master_key
from registry.errors import ConfigurationError
from tests.unit.test_master_key_file import _folder
from tests.unit.test_review_master_key_file import _no_link


def test_a_key_being_written_in_place_is_waited_for_even_when_its_mtime_reads_older_than_a_second(
    tmp_path: Path,
) -> None:
    folder = _folder(tmp_path)
    path = folder / MASTER_KEY_FILE
    key = secrets.token_hex(32)
    created = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # another process, before its write
    past = time.time() - 1.5  # on FAT a file made at 11.5 s reads as made at 10 s
    os.utime(path, (past, past))

    def write_later() -> None:
        time.sleep(0.3)
        os.write(created, (key + "\n").encode("ascii"))
        os.close(created)

    writer = threading.Thread(target=write_later)
    writer.start()
    try:
        assert development_master_key(folder).hex() == key
    finally:
        writer.join()


def test_a_stale_short_file_is_refused_within_the_settle_time_naming_it_never_its_content(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    path = folder / MASTER_KEY_FILE
    path.write_text("abc123", encoding="ascii")
    path.chmod(0o600)
    future = time.time() + 3600  # a server clock an hour ahead: "young" for ever by its mtime
    os.utime(path, (future, future))
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as refused:
        development_master_key(folder)
    assert time.monotonic() - started < KEY_FILE_SETTLE_SECONDS + 1
    assert "is empty or damaged (6 characters" in str(refused.value)
    assert "abc123" not in str(refused.value)


def test_a_key_written_in_place_in_short_writes_is_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _folder(tmp_path)
    write = os.write
    monkeypatch.setattr(os, "link", _no_link)
    monkeypatch.setattr(os, "write", lambda fd, data: write(fd, bytes(data[:20])))  # at most 20 bytes a call
    key = development_master_key(folder)
    monkeypatch.undo()
    assert (folder / MASTER_KEY_FILE).read_text(encoding="ascii") == key.hex() + "\n"
    assert development_master_key(folder) == key


def test_a_failed_write_in_place_leaves_no_empty_key_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path)
    write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(f"/{MASTER_KEY_FILE}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(fd, data)

    monkeypatch.setattr(os, "link", _no_link)
    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(ConfigurationError) as refused:
        development_master_key(folder)
    assert "cannot be made or read (No space left on device)" in str(refused.value)
    monkeypatch.undo()
    assert list(folder.iterdir()) == []  # the next start, with room, makes a key rather than calling it damaged
    key = development_master_key(folder)
    assert (folder / MASTER_KEY_FILE).read_text(encoding="ascii") == key.hex() + "\n"


@pytest.mark.skipif(not hasattr(fcntl, "F_SETLEASE"), reason="file leases are Linux's")
def test_a_key_file_under_another_programs_lease_is_read_once_the_lease_is_let_go(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    path = folder / MASTER_KEY_FILE
    key = secrets.token_hex(32)
    path.write_text(key + "\n", encoding="ascii")
    path.chmod(0o600)
    holder = os.open(path, os.O_RDWR)  # as Samba or an NFS server holds a file a client has open for writing
    previous = signal.signal(signal.SIGIO, signal.SIG_IGN)  # the lease-break notice, to the holder
    fcntl.fcntl(holder, fcntl.F_SETLEASE, fcntl.F_WRLCK)

    def let_go() -> None:
        time.sleep(0.2)
        fcntl.fcntl(holder, fcntl.F_SETLEASE, fcntl.F_UNLCK)

    releaser = threading.Thread(target=let_go)
    releaser.start()
    try:
        assert development_master_key(folder).hex() == key
    finally:
        releaser.join()
        os.close(holder)
        signal.signal(signal.SIGIO, previous)
