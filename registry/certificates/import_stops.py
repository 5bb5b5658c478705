"""What a large import (``registry.certificates.imports``) says when the database stops it midway: the chunks before
were committed, so the words of a single request ("nothing was changed: send it again") would not be true. It says
which rows were committed and where their claim codes are, whether the chunk under way was written, and that running
the same command again carries on (each chunk's idempotency key replays what was committed; once those records have
expired, the rows already issued come back as duplicates): no row is issued twice. So does an import whose file stops
being readable midway (``read``: an I/O error, a file system gone, the file cut short, written to or replaced while
being read, or its last line without a line break, as a file still being written ends), before the chunk it was
reading is issued, and one whose output files cannot take a chunk (``written``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.errors import InputNotRead, OutputsNotWritten, RegistryError, ServiceUnavailable
from registry.faults import RETRY_AFTER_SECONDS, Fault, database_fault
from registry.i18n import Listing, Message, _
from registry.os_reasons import os_reason
from registry.spreadsheets import LINE_LIMIT, bounded_lines

# Why the import stopped, said of the import (registry.faults says it of one request).
_CAUSE = {
    Fault.connection_lost: _("the connection to the database was lost"),
    Fault.unreachable: _("the database cannot be reached"),
    Fault.busy: _("every database connection is busy"),
    Fault.conflict: _("the database rolled the chunk back: it met a concurrent change"),
    Fault.locked: _(
        "the registry is busy with other work on the same records (such as a large batch) and the import could not "
        "take its turn in time"
    ),
}
# A fault met while a chunk's COMMIT was under way, said in place of the one above: no answer came back.
_CAUSE_AT_COMMIT = {
    Fault.unreachable: _("the database stopped answering while the chunk's commit was under way"),
}
# The server answered these with an error, having rolled the transaction back: even at COMMIT, nothing of it stayed.
_ROLLED_BACK = frozenset({Fault.conflict, Fault.locked})
# Why a file that could be read when the import began cannot be read to its end, when no read failed.
CHANGED = _("it was changed while being read (cut short, written to, moved or replaced)")
# Why the rows of a file whose last line stops without a line break are not issued: so ends a file still being
# written (an export not finished) or cut short (a copy that failed), whose last row may be cut (a name cut short).
UNENDED = _(
    "its last line has no line break at its end, as a file still being written or cut short ends, so its last row may "
    "be cut short (if the file is whole, add a line break at the end of its last line)"
)


class Committed(Protocol):
    """What the chunks committed so far add up to (``imports.ImportSummary``)."""

    rows: int
    issued: int
    already_issued: int
    rejected: int
    issued_file: Path | None
    rejected_file: Path | None


@dataclass
class Chunk:
    """The chunk under way: whether its COMMIT has been sent (``transaction``), after which a fault leaves its outcome
    unknown — the server may have committed it and the answer been lost."""

    committing: bool = False


_UNDER_WAY: ContextVar[Chunk | None] = ContextVar("import_chunk_under_way", default=None)


@contextmanager
def reported(committed: Committed, *, first_row: int, rows: int) -> Iterator[Chunk]:
    """Around one chunk (rows ``first_row`` on, ``rows`` of them), whose transaction is ``transaction(sessions)``: a
    database fault becomes ServiceUnavailable saying what is true of the whole import. Any other error goes on."""
    chunk = Chunk()
    under_way = _UNDER_WAY.set(chunk)
    try:
        yield chunk
    except RegistryError:
        raise
    except Exception as exc:
        fault = database_fault(exc)
        if fault is None:
            raise
        last_row = first_row + rows - 1
        detail = stopped(fault, committed, first_row=first_row, last_row=last_row, committing=chunk.committing)
        raise ServiceUnavailable(detail, retry_after=RETRY_AFTER_SECONDS[fault]) from exc
    finally:
        _UNDER_WAY.reset(under_way)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """``registry.db.transaction`` for the chunk under way (``reported``): what it wrote is flushed (a fault there is
    before the COMMIT, and rolls it back), then the chunk is marked committing as the COMMIT is sent."""
    chunk = _UNDER_WAY.get() or Chunk()
    async with sessions() as session, session.begin():
        yield session
        await session.flush()
        chunk.committing = True


@contextmanager
def written(committed: Committed, *, first_row: int, rows: int, outputs: Sequence[IO[str]]) -> Iterator[None]:
    """Around writing a committed chunk's lines (rows ``first_row`` on, ``rows`` of them) to ``outputs``, flushed at
    its end: an output that cannot take them (a full disk, a quota, a drive gone) stops the import saying which rows
    were committed and that a re-run writes their claim codes (each chunk's stored outcome is replayed), never with a
    traceback after which the files look complete."""
    try:
        yield
        for output in outputs:
            output.flush()
    except OSError as exc:
        last_row = first_row + rows - 1
        detail = not_written(committed, first_row=first_row, last_row=last_row, reason=os_reason(exc))
        raise OutputsNotWritten(detail) from exc  # the files' closing keeps it: registry.spreadsheets.NewPrivateFile


class Unchanged:
    """The file being imported as the import's checks found it (``since``): ``check``, once a chunk's rows are read and
    before they are issued, stops the import when the file has been cut short, written to, moved or replaced since.
    Rows read from a file in the middle of changing could be half the old line and half the new (or a line cut short,
    read as a row), and what follows is not the file the operator meant: none of it is issued."""

    def __init__(self, committed: Committed, path: Path) -> None:
        self._committed, self._path = committed, path
        self._fd: int | None = None
        self._seen: tuple[int, ...] = ()
        self._unended = False  # the last line read has no line break: it is the file's last, and it may be cut

    def since(self, handle: IO[str], seen: os.stat_result | None = None) -> None:
        """Watch ``handle``, which must still be the file ``seen`` (as it was when the import was checked; else as it
        is now)."""
        self._fd = handle.fileno()
        self._seen = _version(seen or os.fstat(self._fd))
        self.check()

    def lines(self, handle: IO[str]) -> Iterator[str]:
        """``handle``'s lines (``bounded_lines``), noting whether the last one read ends without a line break (one cut
        at the line limit is refused as too long anyway): ``check`` then stops before its row is issued."""
        for line in bounded_lines(handle):
            self._unended = not line.endswith("\n") and len(line) < LINE_LIMIT
            yield line

    def check(self) -> None:
        assert self._fd is not None, "since() names the handle first"
        now = os.fstat(self._fd)  # an OSError (the file unreadable): said by ``read``
        try:
            named: tuple[int, int] | None = _identity(self._path.stat())
        except (FileNotFoundError, NotADirectoryError):  # moved away (its folder renamed): still readable, not there
            named = None
        if _version(now) != self._seen or named != _identity(now):
            raise InputNotRead(not_read(self._committed, path=self._path, reason=CHANGED))
        if self._unended:
            raise InputNotRead(not_read(self._committed, path=self._path, reason=UNENDED))


def _identity(found: os.stat_result) -> tuple[int, int]:
    return found.st_dev, found.st_ino


def _version(found: os.stat_result) -> tuple[int, ...]:
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


@contextmanager
def read(committed: Committed, *, path: Path) -> Iterator[Unchanged]:
    """Around reading ``path`` chunk by chunk, its lines taken only from a file ``Unchanged`` watches: an error reading
    it (EIO from a failing disk, a network file system gone) stops the import saying which rows were committed, where
    their claim codes are and that a re-run carries on, never with a traceback; the chunk under way is not issued."""
    try:
        yield Unchanged(committed, path)
    except OSError as exc:
        raise InputNotRead(not_read(committed, path=path, reason=os_reason(exc))) from exc


def not_read(committed: Committed, *, path: Path, reason: str) -> Message:
    """The lines the import stops with when its file cannot be read to its end (``reason``), one message: the rows
    committed before (their claim codes in FILE.issued.csv), nothing after them, and that a re-run carries on."""
    row = committed.rows + 1
    lines = [
        _(
            "the import stopped at row {row}: {file} could not be read any further: {reason}",
            row=row,
            file=str(path),
            reason=reason,
        )
    ]
    if committed.rows:
        lines.append(_committed(committed))
    lines.append(_("nothing from row {row} on was committed", row=row))
    lines.append(
        _(
            "once the file can be read whole again, run the same command again to carry on: no row is issued twice, "
            "and this run's files are kept beside the new ones as numbered backups"
        )
    )
    return Listing(lines, separator="\n  ")


def not_written(committed: Committed, *, first_row: int, last_row: int, reason: str) -> Message:
    """The lines the import stops with when its output files cannot be written, one message."""
    folder = committed.issued_file.parent if committed.issued_file is not None else None
    lines = [
        _(
            "the import stopped at row {row}: its output files in {folder} cannot be written: {reason}",
            row=first_row,
            folder=str(folder),
            reason=reason,
        )
    ]
    if committed.rows:
        lines.append(_committed(committed))
    lines.append(
        _(
            "rows {row} to {last} were committed, but their claim codes and reasons may be missing from {issued_file} "
            "and {rejected_file}; nothing after them was committed",
            row=first_row,
            last=last_row,
            issued_file=str(committed.issued_file),
            rejected_file=str(committed.rejected_file),
        )
    )
    lines.append(
        _(
            "make room (or make the folder writable) and run the same command again: it writes their claim codes "
            "again, no row is issued twice, and this run's files are kept beside the new ones as numbered backups"
        )
    )
    return Listing(lines, separator="\n  ")


def _committed(committed: Committed) -> Message:
    return _(
        "rows 1 to {last} were committed before it ({issued} issued, {already_issued} already issued, "
        "{rejected} rejected): their claim codes are in {issued_file}, the rejected rows in {rejected_file}",
        last=committed.rows,
        issued=committed.issued,
        already_issued=committed.already_issued,
        rejected=committed.rejected,
        issued_file=str(committed.issued_file),
        rejected_file=str(committed.rejected_file),
    )


def stopped(fault: Fault, committed: Committed, *, first_row: int, last_row: int, committing: bool = False) -> Message:
    """The lines the import stops with, one message: the cause, the rows committed, the chunk under way, a re-run.
    ``committing``: the fault met the chunk's COMMIT."""
    cause = _CAUSE_AT_COMMIT.get(fault, _CAUSE[fault]) if committing else _CAUSE[fault]
    lines = [_("the import stopped at row {row}: {cause}", row=first_row, cause=cause)]
    if committed.rows:
        lines.append(_committed(committed))
    if committing and fault not in _ROLLED_BACK:  # the COMMIT was sent; whether it was applied was never heard
        lines.append(
            _(
                "rows {row} to {last} may or may not have been issued (the import stopped while their commit was under "
                "way, and its outcome was never heard); nothing after them was committed",
                row=first_row,
                last=last_row,
            )
        )
    elif fault is Fault.connection_lost:  # the commit may have been under way: its outcome was never heard
        lines.append(
            _(
                "rows {row} to {last} may or may not have been issued (the connection was lost before their commit "
                "was confirmed); nothing after them was committed",
                row=first_row,
                last=last_row,
            )
        )
    else:  # rolled back (conflict, locked), or never begun: no connection to be had (busy; unreachable: connecting)
        lines.append(_("nothing from row {row} on was committed", row=first_row))
    lines.append(
        _(
            "run the same command again to carry on: no row is issued twice, and this run's files are kept beside the "
            "new ones as numbered backups"
        )
    )
    return Listing(lines, separator="\n  ")
