"""Large imports (``registry import FILE.csv --issuer CODE``): a national roll-out of millions of rows.

The file is streamed in chunks; each chunk is one transaction under a deterministic idempotency key derived from
its content, so re-running the same file skips every chunk that was already issued and carries on where it stopped.
Bad rows do not stop the import: they are set aside, with their reasons, into a rejected-rows file. What would refuse
the whole file (an unreadable file, a header without the batch columns, an unknown or suspended body, an output path
that is a link, another import of the same file, or of one writing the same outputs, running) is checked first
(``prepare``), before any output file is touched. The output files are never written over: claim codes are shown only
once, and a re-run (say, after the idempotency records expired, when every row comes back as a duplicate) must not lose
them. What an earlier run left is renamed to a numbered backup first, and each output is a new file that only its owner
may read. A chunk's stored outcome keeps its rejected rows' reasons as messages, said in the reader's language. A file
that stops being readable midway stops the import before the chunk under way is issued (``import_stops.read``).
"""

from __future__ import annotations

import contextlib
import errno
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
from registry.certificates import awards, idempotency, import_stops, issuance, rows
from registry.certificates.idempotency import Outcome
from registry.context import RegistryContext
from registry.db import transaction
from registry.errors import IdempotencyKeyInFlight, InvalidInput, NotFound
from registry.i18n import Language, Listing, Message, _, translate
from registry.issuers import service as issuers
from registry.os_reasons import os_reason
from registry.spreadsheets import NOT_A_FILE, NewPrivateFile, SafeWriter, bounded_lines, streamed

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


def _chunks(
    path: Path, committed: import_stops.Committed | None = None, seen: os.stat_result | None = None
) -> Iterator[tuple[list[str], list[list[str] | rows.Unreadable]]]:
    # Read as an upload is read (rows.utf8_lines): LF-only lines, bad bytes kept in their cells to be named there.
    with (
        import_stops.read(committed or ImportSummary(), path=path) as unchanged,
        path.open(encoding="utf-8-sig", errors="surrogateescape", newline="\n") as handle,
    ):
        unchanged.since(handle, seen)  # the file ``prepare`` checked, as then; a read error or change: the import stops
        header, records = rows.read_csv(unchanged.lines(handle))
        chunk: list[list[str] | rows.Unreadable] = []
        for record in records:
            chunk.append(record)
            if len(chunk) == CHUNK_ROWS:
                unchanged.check()
                yield header, chunk
                chunk = []
        unchanged.check()
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
    """An import that passed every check that can be made before its first row (``prepare``), holding the locks on
    the file and its outputs until ``import_rows`` ends (or ``lock.release()``), and the earlier outputs it renamed."""

    path: Path
    principal: Principal
    lock: ImportLock
    set_aside: list[tuple[Path, Path]]


async def run_import(
    ctx: RegistryContext,
    sessions: async_sessionmaker[AsyncSession],
    *,
    path: Path,
    issuer_code: str,
    on_progress: Callable[[int], None] = lambda _rows: None,
    lang: Language = "en",
) -> ImportSummary:
    plan = await prepare(sessions, path=path, issuer_code=issuer_code)
    return await import_rows(ctx, sessions, plan, on_progress=on_progress, lang=lang)


def outputs(path: Path) -> tuple[Path, Path]:
    """FILE.rejected.csv and FILE.issued.csv, beside FILE.csv."""
    return path.with_suffix(".rejected.csv"), path.with_suffix(".issued.csv")


async def prepare(sessions: async_sessionmaker[AsyncSession], *, path: Path, issuer_code: str) -> ImportPlan:
    """Everything that would refuse the whole file, checked before any output file is touched: the file can be read,
    is not empty and its header has the batch columns (InvalidInput), the evaluation body exists (NotFound) and may
    issue (Forbidden), no output path is a link or other than a file (InvalidInput), and no other import of the file,
    nor of another file writing the same outputs (roll.txt beside roll.csv), is running (IdempotencyKeyInFlight). Then
    the outputs an earlier run left are renamed to numbered backups."""
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
    lock = ImportLock(path)
    try:
        set_aside = [(output, kept) for output in outputs(path) if (kept := _set_aside(output)) is not None]
    except OSError as exc:  # e.g. a folder the operator may read but not write
        lock.release()
        reason = os_reason(exc)
        raise InvalidInput.field(str(path.parent), _("cannot be written: {reason}", reason=reason)) from None
    except BaseException:
        lock.release()
        raise
    return ImportPlan(path=path, principal=principal, lock=lock, set_aside=set_aside)


def _check_rows(path: Path) -> None:
    """The file can be read, has something in it, a header with the batch columns and a row under it; it is a file,
    not a pipe or a device (read once, it would hold nothing for the chunks, nor for a re-run)."""
    if streamed(path):
        raise InvalidInput.field("file", NOT_A_FILE)
    try:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="\n") as handle:
            header, records = rows.read_csv(bounded_lines(handle))
            empty = next(records, None) is None
    except OSError as exc:
        raise InvalidInput.field("file", _("cannot be read: {reason}", reason=os_reason(exc))) from None
    if empty and not header:  # said as an empty upload is ("body: is required"), not as a header missing 7 columns
        raise InvalidInput.field("file", _("is empty"))
    rows.check_header(header)
    if empty:  # as a batch with no rows is refused: an import that issued nothing must not say "every row issued"
        raise InvalidInput.field("file", _("the batch has no rows"))


def lock_file(path: Path) -> Path:
    """The hidden file beside the outputs of importing ``path`` that ``ImportLock`` locks: .FILE.issued.csv.lock."""
    issued = outputs(path)[1]
    return issued.with_name(f".{issued.name}.lock")


class ImportLock:
    """Exclusive advisory locks (flock) held for the whole import, on the file being imported and on its outputs
    (FILE.issued.csv, FILE.rejected.csv and their backups, which roll.csv and roll.txt share): a second import of
    either is refused before it touches an output file or issues anything. The outputs' lock is a hidden file beside
    them (``lock_file``) naming the file being imported, removed when the import ends (one a crashed import left
    behind locks nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = lock_file(path)
        self._outputs: int | None = None
        try:
            self._input: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise InvalidInput.field("file", _("cannot be read: {reason}", reason=os_reason(exc))) from None
        try:
            self.seen = os.fstat(self._input)  # the file as checked: the chunks must read it so (import_stops.read)
            if not _locked(self._input):
                raise IdempotencyKeyInFlight(
                    _(
                        "another registry import of {file} is running; once it has ended, run this command again",
                        file=str(path),
                    )
                )
            while self._outputs is None:
                fd = _open_lock_file(self.path)
                if not _locked(fd):
                    holder = _holder(fd)
                    os.close(fd)
                    raise _outputs_busy(outputs(path)[1], holder)
                if _same_file(fd, self.path):
                    self._outputs = fd
                else:  # removed by the import that held it, which has just ended: lock the one there now
                    os.close(fd)
        except BaseException:
            self.release()
            raise
        with contextlib.suppress(OSError):  # another user's lock file, opened read-only, names nobody
            os.ftruncate(self._outputs, 0)
            os.pwrite(self._outputs, os.fsencode(os.path.abspath(path)) + b"\n", 0)

    def release(self) -> None:
        if self._outputs is not None:
            with contextlib.suppress(OSError):  # removed while still locked: an import waiting on it locks anew
                os.unlink(self.path)
            os.close(self._outputs)
            self._outputs = None
        if self._input is not None:
            os.close(self._input)
            self._input = None


def _locked(fd: int) -> bool:
    """An exclusive lock on ``fd`` taken (or a file system without locks: the chunks' own keys still keep a row from
    being issued twice); False when another import holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        pass
    return True


def _open_lock_file(path: Path) -> int:
    flags = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            return os.open(path, os.O_RDWR | flags, 0o644)
        except PermissionError:  # left by another user's import: a lock needs only reading
            return os.open(path, os.O_RDONLY | flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _in_the_way(path) from None
        reason = os_reason(exc)
        raise InvalidInput.field(str(path.parent), _("cannot be written: {reason}", reason=reason)) from None


def _same_file(fd: int, path: Path) -> bool:
    with contextlib.suppress(FileNotFoundError):
        held, named = os.fstat(fd), path.lstat()
        return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
    return False


def _holder(fd: int) -> str | None:
    """The file the import holding a lock file is importing, as it wrote it there (None while it has not yet)."""
    said = os.pread(fd, 4096, 0).decode("utf-8", "replace")
    return "".join(ch for ch in said.strip() if ch.isprintable()) or None


def _outputs_busy(issued: Path, holder: str | None) -> IdempotencyKeyInFlight:
    if holder is None:  # it has only just locked them
        busy = _(
            "another registry import is writing {output}; once it has ended, run this command again", output=str(issued)
        )
    else:
        busy = _(
            "another registry import, of {other}, is writing {output}; once it has ended, run this command again",
            other=holder,
            output=str(issued),
        )
    return IdempotencyKeyInFlight(busy)


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
    lang: Language = "en",
) -> ImportSummary:
    """Issues a prepared import chunk by chunk, writing FILE.issued.csv and FILE.rejected.csv beside the file (both
    new files, the reasons in ``lang``), then releases the file's locks."""
    try:
        return await _issue_into_outputs(ctx, sessions, plan, on_progress=on_progress, lang=lang)
    finally:
        plan.lock.release()


async def _issue_into_outputs(
    ctx: RegistryContext,
    sessions: async_sessionmaker[AsyncSession],
    plan: ImportPlan,
    *,
    on_progress: Progress,
    lang: Language,
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
        for header, records in _chunks(path, summary, plan.lock.seen):
            if summary.chunks == 0:
                rejected_writer.writerow(["row", *header, "reasons"])
            with import_stops.reported(summary, first_row=first_row, rows=len(records)):  # a fault: what is true
                outcome, replayed = await _import_chunk(
                    ctx, sessions, principal=principal, header=header, records=records
                )
            # Each chunk's lines are flushed once written: a file that cannot take them stops the import, saying so.
            with import_stops.written(
                summary, first_row=first_row, rows=len(records), outputs=(rejected_out, issued_out)
            ):
                for item in outcome["issued"]:
                    issued_writer.writerow(
                        [first_row - 1 + item["row"], item["number"], item["verify_url"], item["claim_code"]]
                    )
                for row_number, stored in outcome["rejected"]:
                    reasons = [_reason(reason) for reason in stored]
                    said = translate(Listing(message for _field, message in reasons), lang)
                    rejected_writer.writerow(
                        _rejected_line(first_row - 1 + row_number, header, records[row_number - 1], said)
                    )
                    for field_name, _message in reasons:
                        summary.reasons[field_name] = summary.reasons.get(field_name, 0) + 1
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
    async with import_stops.transaction(sessions) as session:  # a fault at its COMMIT leaves the chunk unknown

        async def run() -> Outcome:
            issuer = await issuance.issuing_body(session, principal)
            given = rows.rows_from_records(header, records)
            screening, minted = await issuance.issue_rows(
                ctx, session, principal=principal, issuer=issuer, given=given, purpose="import", all_or_nothing=False
            )
            assert minted is not None, "an import chunk is never a dry run"
            rejected: dict[int, list[dict[str, Any]]] = {}
            for refusal in screening.refusals:  # said once the reader is known (``_reason``), on a re-run too
                rejected.setdefault(refusal.row, []).append({"field": refusal.field, "message": _kept(refusal.message)})
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


def _kept(text: str) -> Any:
    """A message as a stored outcome keeps it, to be said in any language: its template and values (or items)."""
    if isinstance(text, Listing):
        return {"items": [_kept(item) for item in text.items], "separator": text.separator}
    if not isinstance(text, Message):
        return str(text)
    values = {
        key: _kept(value) if isinstance(value, str) else value if isinstance(value, int | float | None) else str(value)
        for key, value in text.values.items()
    }
    return {"template": text.template, "values": values}


def _restored(kept: Any) -> Any:
    if not isinstance(kept, dict):
        return kept
    if "items" in kept:
        return Listing((_restored(item) for item in kept["items"]), separator=kept["separator"])
    return Message(kept["template"], **{key: _restored(value) for key, value in kept["values"].items()})


def _reason(kept: str | dict[str, Any]) -> tuple[str, Message]:
    """A stored reason for a rejected row: its field, and what it says. One stored before reasons were kept as messages
    is English text, "field: message": its message is said from the catalogue when it is there word for word."""
    if isinstance(kept, str):
        field_name, _colon, text = kept.partition(": ")
        kept = {"field": field_name, "message": text}
    said = kept["message"]
    message = _restored(said) if isinstance(said, dict) else Message(said)
    return kept["field"], _("{field}: {message}", field=kept["field"], message=message)


def _private(path: Path) -> NewPrivateFile:
    """A new file readable and writable by its owner only: never an existing file (``prepare`` renamed what an earlier
    run left), never through a symbolic link."""
    return NewPrivateFile(path, in_the_way=_in_the_way)
