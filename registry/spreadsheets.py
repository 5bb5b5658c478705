"""Every CSV the registry writes goes through here, so that opening it in a spreadsheet cannot run a formula; and the
lines of a CSV file it reads (``bounded_lines``), so that no line, however long, is held in memory whole.

The OWASP rule for CSV injection: a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
(or their full-width forms ``＝ ＋ － ＠``, which some spreadsheet input methods treat alike) gets a leading
apostrophe ``'``, which a spreadsheet shows as text and does not evaluate. A cell that is a plain number
(``-12``, ``+3.5``) is left as it is: a spreadsheet reads it as that number, not as a formula, and an apostrophe would
corrupt it. Quoting and embedded quotes are the ``csv`` module's job, as always.
"""

from __future__ import annotations

import csv
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from registry.errors import InvalidInput
from registry.i18n import _
from registry.os_reasons import os_reason

FORMULA_LEADERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
# Characters of one line read at a time: over nine values at the csv module's limit (128 KiB each) with their quotes
# and commas, so no line of the batch columns is ever cut short by it.
LINE_LIMIT = 1 << 21
# Said of a path ``streamed`` finds: a file to import is read more than once (and again by a re-run).
NOT_A_FILE = _(
    "is a pipe, a socket or a device, not a file: the import reads its file more than once (and a re-run reads it "
    "again), so save what it holds to a file and import that"
)


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def neutralised(cell: object) -> object:
    """``cell`` as it may be written to a CSV file: text that a spreadsheet would evaluate gets a leading ``'``."""
    if isinstance(cell, str) and cell.startswith(FORMULA_LEADERS) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


class SafeWriter:
    """``csv.writer`` with every cell neutralised: the one way the registry writes CSV."""

    def __init__(self, handle: _Writable) -> None:
        self._writer = csv.writer(handle)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([neutralised(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def bounded_lines(handle: IO[str], limit: int = LINE_LIMIT) -> Iterator[str]:
    """The lines of ``handle``, none longer than ``limit`` characters: a longer one (a value gigabytes long, a file
    with no LF in it, such as one saved with CR line ends) is cut there and the rest of it skipped unread into memory.
    The cut line holds a value over the csv module's limit (or more values than columns), so it is refused as any
    such line is, naming its column; it never reads as a good row."""
    while line := handle.readline(limit):
        if len(line) == limit and not line.endswith("\n"):
            while (rest := handle.readline(limit)) and not rest.endswith("\n"):
                pass
        yield line


def streamed(path: Path) -> bool:
    """Whether ``path`` names a pipe (a FIFO, /dev/stdin fed by one), a socket or a device rather than a file or a
    folder: what it holds can be read only once, so a second reading finds nothing (or waits for a writer that has
    gone), and a writer that stops early looks like the file's end. Looked at without opening it (opening a FIFO waits
    for a writer); a path that cannot be looked at is left to be said when it is opened."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


class NewPrivateFile:
    """A new text file readable and writable by its owner only, for CSV (``SafeWriter``): never an existing file,
    never reached through a symbolic link (``in_the_way`` says what to raise when one is there). Closed after an error,
    it keeps that error: what could not be written then (a full disk) is not raised a second time over it."""

    def __init__(self, path: Path, *, in_the_way: Callable[[Path], Exception]) -> None:
        self.path = path
        self._in_the_way = in_the_way

    def __enter__(self) -> IO[str]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except FileExistsError:  # put there since the caller looked: not ours to write over, nor to follow
            raise self._in_the_way(self.path) from None
        except OSError as exc:
            raise InvalidInput.field(str(self.path), _("cannot be written: {reason}", reason=os_reason(exc))) from None
        os.fchmod(fd, 0o600)  # the umask may only take more away; this is what the owner needs
        self.handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        return self.handle

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            self.handle.close()
        except OSError:
            if kind is None:
                raise
