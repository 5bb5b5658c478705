"""Large imports (``registry import FILE.csv --issuer CODE``): a national roll-out of millions of rows.

The file is streamed in chunks; each chunk is one transaction under a deterministic idempotency key derived from
its content, so re-running the same file skips every chunk that was already issued and carries on where it stopped.
Bad rows do not stop the import: they are set aside, with their reasons, into a rejected-rows file. What would refuse
the whole file (an unreadable file, a header without the batch columns, an unknown or suspended body, an output path
that is a link, another import of the same file running) is checked first (``prepare``), before any output file is
touched. The output files are never written over: claim codes are shown only once, and a re-run (say, after the
idempotency records expired, when every row comes back as a duplicate) must not lose them. What an earlier run left is
renamed to a numbered backup first, and each output is a new file that only its owner may read.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.auth.principals import Principal
from registry.auth.scopes import Role
from registry.certificates import awards, idempotency, issuance, rows
from registry.certificates.idempotency import Outcome
from registry.context import RegistryContext
from registry.db import transaction
from registry.errors import IdempotencyKeyInFlight, InvalidInput, NotFound
from registry.i18n import _
from registry.issuers import service as issuers
from registry.spreadsheets import SafeWriter

CHUNK_ROWS = 5_000
OPERATION = "certificates.import"
Progress = Callable[[int], None]  # told the number of rows of each chunk done


@dataclass
class ImportSummary:
    rows: int = 0
    issued: int = 0
    already_issued: int = 0
    rejected: int = 0
    chunks: int = 0
    rejected_file: Path | None = None
    issued_file: Path | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    set_aside: list[tuple[Path, Path]] = field(default_factory=list)  # (output, the backup an earlier run's became)


def count_rows(path: Path) -> int:
    """Data rows in the file (for the progress bar's ETA): a fast line count, header excluded. A last line without
    its newline counts; a value holding a line break counts twice (the bar's total is an estimate)."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines, last = lines + block.count(b"\n"), block[-1:]
    return max(0, lines + (last != b"\n") - 1)


def _chunks(path: Path) -> Iterator[tuple[list[str], list[list[str] | rows.Unreadable]]]:
    # Read as an upload is read (rows.utf8_lines): LF-only lines, bad bytes kept in their cells to be named there.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="\n") as handle:
        header, records = rows.read_csv(handle)
        chunk: list[list[str] | rows.Unreadable] = []
        for record in records:
            chunk.append(record)
            if len(chunk) == CHUNK_ROWS:
                yield header, chunk
                chunk = []
        if chunk:
            yield header, chunk


def _chunk_key(header: list[str], records: list[list[str] | rows.Unreadable]) -> str:
    try:
        content = orjson.dumps([header, records])
    except orjson.JSONEncodeError:  # a header or cell orjson will not write; the standard library escapes it
        content = json.dumps([header, [r if isinstance(r, list) else repr(r) for r in records]]).encode()
    return "chunk-" + hashlib.sha256(content).hexdigest()[:48]


def _rejected_line(number: int, header: list[str], record: list[str] | rows.Unreadable, reasons: str) -> list[str]:
    """A refused record as the rejected-rows file repeats it, with the reasons in their column: its cells (any beyond
    the header after the reasons), or the text of a record that has no cells in the first column."""
    cells = [record.text] if isinstance(record, rows.Unreadable) else record
    width = len(header)
    cells = [*cells, *[""] * (width - len(cells))]
    return [str(number), *cells[:width], reasons, *cells[width:]]


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """An import that passed every check that can be made before its first row (``prepare``), holding the file's lock
    until ``import_rows`` ends (or ``lock.release()``), and the earlier outputs it renamed."""

    path: Path
    principal: Principal
    lock: InputLock
    set_aside: list[tuple[Path, Path]]


async def run_import(
    ctx: RegistryContext,
    sessions: async_sessionmaker[AsyncSession],
    *,
    path: Path,
    issuer_code: str,
    on_progress: Callable[[int], None] = lambda _rows: None,
) -> ImportSummary:
    plan = await prepare(sessions, path=path, issuer_code=issuer_code)
    return await import_rows(ctx, sessions, plan, on_progress=on_progress)


def outputs(path: Path) -> tuple[Path, Path]:
    """FILE.rejected.csv and FILE.issued.csv, beside FILE.csv."""
    return path.with_suffix(".rejected.csv"), path.with_suffix(".issued.csv")


async def prepare(sessions: async_sessionmaker[AsyncSession], *, path: Path, issuer_code: str) -> ImportPlan:
    """Everything that would refuse the whole file, checked before any output file is touched: the file can be read,
    is not empty and its header has the batch columns (InvalidInput), the evaluation body exists (NotFound) and may
    issue (Forbidden), no output path is a link or other than a file (InvalidInput), and no other import of the file
    is running (IdempotencyKeyInFlight). Then the outputs an earlier run left are renamed to numbered backups."""
    _check_rows(path)
    async with transaction(sessions) as session:
        issuer = await issuers.get_by_code(session, issuer_code)
    if issuer is None:
        raise NotFound(_("no evaluation body {code}", code=issuer_code))
    awards.ensure_may_issue(issuer)
    principal = Principal(
        client_id=f"import:{issuer.code}"[:64],
        role=Role.issuer,
        scopes=frozenset(),
        issuer_id=issuer.id,
        issuer_code=issuer.code,
        region=issuer.region,
    )
    for output in outputs(path):
        _ensure_writable_place(output)
    lock = InputLock(path)
    try:
        set_aside = [(output, kept) for output in outputs(path) if (kept := _set_aside(output)) is not None]
    except OSError as exc:  # e.g. a folder the operator may read but not write
        lock.release()
        reason = exc.strerror or str(exc)
        raise InvalidInput.field(str(path.parent), _("cannot be written: {reason}", reason=reason)) from None
    except BaseException:
        lock.release()
        raise
    return ImportPlan(path=path, principal=principal, lock=lock, set_aside=set_aside)


def _check_rows(path: Path) -> None:
    """The file can be read, has something in it, a header with the batch columns and a row under it."""
    try:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="\n") as handle:
            header, records = rows.read_csv(handle)
            empty = next(records, None) is None
    except OSError as exc:
        raise InvalidInput.field("file", _("cannot be read: {reason}", reason=exc.strerror or str(exc))) from None
    if empty and not header:  # said as an empty upload is ("body: is required"), not as a header missing 7 columns
        raise InvalidInput.field("file", _("is empty"))
    rows.check_header(header)
    if empty:  # as a batch with no rows is refused: an import that issued nothing must not say "every row issued"
        raise InvalidInput.field("file", _("the batch has no rows"))


class InputLock:
    """An exclusive advisory lock (flock) on the file being imported, held for the whole import: a second import of
    the same file is refused before it touches the first one's output files or issues anything."""

    def __init__(self, path: Path) -> None:
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise InvalidInput.field("file", _("cannot be read: {reason}", reason=exc.strerror or str(exc))) from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise IdempotencyKeyInFlight(
                _(
                    "another registry import of {file} is running; once it has ended, run this command again",
                    file=str(path),
                )
            ) from None
        except OSError:  # a file system without locks: the chunks' own keys still keep a row from being issued twice
            pass

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _ensure_writable_place(output: Path) -> None:
    """An output path may hold nothing or a regular file: a link is never followed (it could point anywhere)."""
    if output.is_symlink() or (output.exists() and not output.is_file()):
        raise _in_the_way(output)


def _in_the_way(output: Path) -> InvalidInput:
    return InvalidInput.field(
        str(output),
        _(
            "is a symbolic link or not a regular file: the import writes only a new file of its own there and follows "
            "no link; move it out of the way and run the command again"
        ),
    )


def _set_aside(output: Path) -> Path | None:
    """What an earlier run left at ``output`` (it may hold the only copy of claim codes) renamed to ``output``.1 (.2,
    …: the first number free; nothing is ever written over) and made readable by the owner only; an empty file is
    removed. The backup, or None when there was nothing to keep."""
    try:
        found = output.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(found.st_mode):
        raise _in_the_way(output)
    if found.st_size == 0:
        output.unlink()
        return None
    for number in itertools.count(1):
        backup = output.with_name(f"{output.name}.{number}")
        try:
            os.link(output, backup, follow_symlinks=False)  # fails when the name is taken, unlike a rename
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links: rename to a name seen free
            if os.path.lexists(backup):
                continue
            output.rename(backup)
        else:
            output.unlink()
        os.chmod(backup, 0o600)
        return backup
    raise AssertionError("unreachable")


async def import_rows(
    ctx: RegistryContext,
    sessions: async_sessionmaker[AsyncSession],
    plan: ImportPlan,
    *,
    on_progress: Progress = lambda _rows: None,
) -> ImportSummary:
    """Issues a prepared import chunk by chunk, writing FILE.issued.csv and FILE.rejected.csv beside the file (both
    new files), then releases the file's lock."""
    try:
        return await _issue_into_outputs(ctx, sessions, plan, on_progress=on_progress)
    finally:
        plan.lock.release()


async def _issue_into_outputs(
    ctx: RegistryContext, sessions: async_sessionmaker[AsyncSession], plan: ImportPlan, *, on_progress: Progress
) -> ImportSummary:
    path, principal = plan.path, plan.principal
    rejected_file, issued_file = outputs(path)
    summary = ImportSummary(rejected_file=rejected_file, issued_file=issued_file, set_aside=list(plan.set_aside))
    # Both output files hold personal data (the operator's own input and claim codes): readable by the owner only.
    # Every cell goes through SafeWriter: a cell a spreadsheet would run as a formula gets a leading apostrophe.
    # A cell that is not UTF-8 is repeated with its bad bytes written as \xNN, so the file stays UTF-8.
    with _private(rejected_file) as rejected_out, _private(issued_file) as issued_out:
        rejected_writer, issued_writer = SafeWriter(rejected_out), SafeWriter(issued_out)
        issued_writer.writerow(["row", "number", "verify_url", "claim_code"])
        first_row = 1
        for header, records in _chunks(path):
            if summary.chunks == 0:
                rejected_writer.writerow(["row", *header, "reasons"])
            outcome, replayed = await _import_chunk(ctx, sessions, principal=principal, header=header, records=records)
            for item in outcome["issued"]:
                issued_writer.writerow(
                    [first_row - 1 + item["row"], item["number"], item["verify_url"], item["claim_code"]]
                )
            for row_number, reasons in outcome["rejected"]:
                record = records[row_number - 1]
                rejected_writer.writerow(_rejected_line(first_row - 1 + row_number, header, record, "; ".join(reasons)))
                for reason in reasons:
                    summary.reasons[reason.split(":")[0]] = summary.reasons.get(reason.split(":")[0], 0) + 1
            summary.rows += len(records)
            summary.rejected += len(outcome["rejected"])
            if replayed:
                summary.already_issued += len(outcome["issued"])
            else:
                summary.issued += len(outcome["issued"])
            summary.chunks += 1
            first_row += len(records)
            on_progress(len(records))
    return summary


async def _import_chunk(
    ctx: RegistryContext,
    sessions: async_sessionmaker[AsyncSession],
    *,
    principal: Principal,
    header: list[str],
    records: list[list[str] | rows.Unreadable],
) -> tuple[dict[str, Any], bool]:
    """Issue a chunk's good rows, set its bad rows aside: one transaction, replayed when the chunk was done before."""
    key = _chunk_key(header, records)
    try:
        return await _once(ctx, sessions, principal=principal, header=header, records=records, key=key)
    except IdempotencyKeyInFlight:  # a copy of the file imported elsewhere: said for the command, not as HTTP
        raise IdempotencyKeyInFlight(
            _(
                "another import is issuing the same rows at this moment (from a copy of this file, or on another "
                "machine); this one stopped here, and what it wrote is kept; once the other has ended, run this "
                "command again to carry on"
            )
        ) from None


async def _once(
    ctx: RegistryContext,
    sessions: async_sessionmaker[AsyncSession],
    *,
    principal: Principal,
    header: list[str],
    records: list[list[str] | rows.Unreadable],
    key: str,
) -> tuple[dict[str, Any], bool]:
    async with transaction(sessions) as session:

        async def run() -> Outcome:
            issuer = await issuance.issuing_body(session, principal)
            given = rows.rows_from_records(header, records)
            screening, minted = await issuance.issue_rows(
                ctx, session, principal=principal, issuer=issuer, given=given, purpose="import", all_or_nothing=False
            )
            assert minted is not None, "an import chunk is never a dry run"
            rejected: dict[int, list[str]] = {}
            for refusal in screening.refusals:
                rejected.setdefault(refusal.row, []).append(f"{refusal.field}: {refusal.message}")
            outcome = {
                "issued": issuance.batch_answer(ctx, minted)["certificates"],
                "rejected": sorted(rejected.items()),
            }
            return Outcome(201, orjson.dumps(outcome))

        answer = await idempotency.once(
            ctx, session, principal=principal, operation=OPERATION, key=key, digest=key, run=run
        )
    body: dict[str, Any] = orjson.loads(answer.body)
    return body, answer.replayed


class _private:
    """A new file readable and writable by its owner only: never an existing file (``prepare`` renamed what an earlier
    run left), never through a symbolic link."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Any:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except FileExistsError:  # put there since prepare looked: not ours to write over, nor to follow
            raise _in_the_way(self.path) from None
        except OSError as exc:
            raise InvalidInput.field(
                str(self.path), _("cannot be written: {reason}", reason=exc.strerror or str(exc))
            ) from None
        os.fchmod(fd, 0o600)  # the umask may only take more away; this is what the owner needs
        self.handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        return self.handle

    def __exit__(self, *exc: object) -> None:
        self.handle.close()
