"""Large imports (``registry import FILE.csv --issuer CODE``): a national roll-out of millions of rows.

The file is streamed in chunks; each chunk is one transaction under a deterministic idempotency key derived from
its content, so re-running the same file skips every chunk that was already issued and carries on where it stopped.
Bad rows do not stop the import: they are set aside, with their reasons, into a rejected-rows file. What would refuse
the whole file (an unreadable file, a header without the batch columns, an unknown or suspended body) is checked
first (``prepare``), before any output file is created.
"""

from __future__ import annotations

import hashlib
import json
import os
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
from registry.errors import InvalidInput, NotFound
from registry.i18n import _
from registry.issuers import service as issuers
from registry.spreadsheets import SafeWriter

CHUNK_ROWS = 5_000
OPERATION = "certificates.import"


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


def count_rows(path: Path) -> int:
    """Data rows in the file (for the progress bar's ETA): a fast newline count, header excluded."""
    with path.open("rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return max(0, lines - 1)


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
    """An import that passed every check that can be made before its first row (``prepare``)."""

    path: Path
    principal: Principal


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


async def prepare(sessions: async_sessionmaker[AsyncSession], *, path: Path, issuer_code: str) -> ImportPlan:
    """Everything that would refuse the whole file, checked before any output file exists: the file can be read, its
    header has the batch columns (an unreadable file or header raises InvalidInput), and the evaluation body exists
    (NotFound) and may issue (Forbidden)."""
    try:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="\n") as handle:
            header, records = rows.read_csv(handle)
            empty = next(records, None) is None
    except OSError as exc:
        raise InvalidInput.field("file", _("cannot be read: {reason}", reason=exc.strerror or str(exc))) from None
    rows.check_header(header)
    if empty:  # as a batch with no rows is refused: an import that issued nothing must not say "every row issued"
        raise InvalidInput.field("file", _("has no rows under its header"))
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
    return ImportPlan(path=path, principal=principal)


async def import_rows(
    ctx: RegistryContext,
    sessions: async_sessionmaker[AsyncSession],
    plan: ImportPlan,
    *,
    on_progress: Callable[[int], None] = lambda _rows: None,
) -> ImportSummary:
    """Issues a prepared import chunk by chunk, writing FILE.issued.csv and FILE.rejected.csv beside the file."""
    path, principal = plan.path, plan.principal
    rejected_file, issued_file = path.with_suffix(".rejected.csv"), path.with_suffix(".issued.csv")
    summary = ImportSummary(rejected_file=rejected_file, issued_file=issued_file)
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
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Any:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        return self.handle

    def __exit__(self, *exc: object) -> None:
        self.handle.close()
