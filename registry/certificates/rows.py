"""Rows of a batch or an import file: CSV with the batch columns, or JSON objects shaped like a single issuance,
turned into awards — and every row that cannot be read, with its row number and the field at fault.

A row is checked against the same request schema as ``POST /v1/certificates`` and its errors are named by the same
function (``errors.field_errors``), so a bad value reads the same whichever way it was sent. CSV that cannot be read
at all (a value over the ``csv`` module's 128 KiB limit, a carriage return outside quotes, bytes that are not UTF-8)
is refused here, row by row and naming the column, the same way for an upload and for ``registry import``: both read
lines split on LF only, decoded with ``surrogateescape`` so that a bad byte is found in its cell, not in the whole file.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import re
from collections.abc import AsyncGenerator, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from registry import clock, workers
from registry.catalogue.models import CertType
from registry.certificates.awards import Award, Refusal
from registry.certificates.schemas import CertificateIssue
from registry.errors import BatchRejected, FieldError, InvalidInput, field_errors
from registry.holders.identity import IdType
from registry.holders.schemas import TODAY
from registry.i18n import Message, _

if TYPE_CHECKING:  # an annotation only
    from registry.config import Settings

MAX_ROWS = 10_000
CSV_COLUMNS = (
    "cert_type",
    "catalogue_code",
    "level",
    "holder_name",
    "holder_id_type",
    "holder_id_number",
    "awarded_on",
    "valid_until",
    "evaluation_batch",
)
_OPTIONAL_COLUMNS = frozenset({"valid_until", "evaluation_batch"})
NOT_UTF8 = _("is not UTF-8 text: save the file as UTF-8 (in a spreadsheet, CSV UTF-8)")
BARE_CR = _(
    "holds a carriage return (CR) outside double quotes: end lines with LF or CRLF, and put a value that contains "
    "a line break in double quotes"
)
EXTRA_VALUES = _("more values than header columns")
UNCLOSED_QUOTE = _(
    "opens a double quote that is never closed, so every line after it was read into this value: close the quote, "
    "or double a quote that is part of the value"
)
_ECHOED_CHARACTERS = 1024  # of an unreadable record, kept for the rejected-rows file
# An unknown column is named by its header text only when it looks like a column name: ASCII, starting with a letter,
# with no run of four digits (a date, a certificate number, an identity number or permit number of any length).
_COLUMN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_ .\-]{0,63}")
_DIGIT_RUN = re.compile(r"[0-9]{4}")
# What a byte that is not UTF-8 becomes when decoded with surrogateescape.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
PARSE_CHUNK_ROWS = 1_000  # at most, per worker task in ``parsed_chunks``: ~40 ms of validation on a slow core
# An award as it comes back from a worker (``_parse_plain``): Award's fields as plain values, which pickle far faster
# than a dataclass of enums (benchmarks/README.md, "Rows validated in the workers"). Row number first.
_PlainAward = tuple[int, str, str, str, str, str, str, date, date | None, str | None]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A CSV record that could not be read as cells: the field at fault (``row`` when no one column is), why, and
    the record's text as read (its first 1,024 characters; bytes that are not UTF-8 written as ``\\xNN``)."""

    field: str
    message: str
    text: str


Row = dict[str, Any] | Unreadable


def utf8_lines(data: bytes) -> io.StringIO:
    """An uploaded CSV body as lines the way ``registry import`` reads a file: BOM dropped, split on LF only."""
    return io.StringIO(data.decode("utf-8-sig", errors="surrogateescape"), newline="\n")


def read_csv(lines: Iterable[str]) -> tuple[list[str], Iterator[list[str] | Unreadable]]:
    """The header, then each record as its cells or as Unreadable. Blank lines are skipped."""
    source = _Taken(lines)
    # strict: a double quote opened and never closed is an error at the end of the file, not a value that silently
    # swallowed every line after it; nor is a quote followed by more text in the same cell taken as it comes.
    reader = csv.reader(source, strict=True)
    try:
        header = next(reader, [])
    except csv.Error as exc:
        _column, message = _structural_problem(source.take(), exc)
        raise BatchRejected(_("the CSV header cannot be read"), errors=[FieldError("header", message, row=0)]) from None
    source.take()
    if any(_UNDECODABLE.search(name) for name in header):
        raise BatchRejected(_("the CSV header cannot be read"), errors=[FieldError("header", NOT_UTF8, row=0)])
    return header, _records(reader, source, header)


def _records(reader: Iterator[list[str]], source: _Taken, header: list[str]) -> Iterator[list[str] | Unreadable]:
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            text = source.take()
            column, message = _structural_problem(text, exc)
            yield Unreadable(_field_of(header, column), message, _as_read(text))
            continue
        text = source.take()
        if not record:
            continue
        if _UNDECODABLE.search(text) is None:
            yield record
            continue
        bad = next((column for column, cell in enumerate(record) if _UNDECODABLE.search(cell)), None)
        yield Unreadable(_field_of(header, bad), NOT_UTF8, _as_read(text))


def rows_from_records(
    header: list[str], records: Iterable[list[str] | Unreadable], *, max_rows: int | None = None
) -> list[Row]:
    """Records under the columns of CSV_COLUMNS (header required); holder_* columns become the nested holder object.
    Stops reading as soon as there are more than ``max_rows`` rows."""
    check_header(header)
    top = [(index, name) for index, name in enumerate(header) if not name.startswith("holder_")]
    held = [(index, name.removeprefix("holder_")) for index, name in enumerate(header) if name.startswith("holder_")]
    rows: list[Row] = []
    for record in records:
        if max_rows is not None and len(rows) >= max_rows:
            raise InvalidInput.field("certificates", too_many_rows(max_rows))
        if isinstance(record, Unreadable):
            rows.append(record)
            continue
        if len(record) > len(header):
            rows.append(Unreadable("row", EXTRA_VALUES, ""))
            continue
        # An empty cell (or one missing at the end) is a value not given, as if the key were left out of a JSON row:
        # "Field required" for a required column, the default for an optional one.
        cells = len(record)
        row: dict[str, Any] = {name: record[index] for index, name in top if index < cells and record[index] != ""}
        row["holder"] = {name: record[index] for index, name in held if index < cells and record[index] != ""}
        rows.append(row)
    return rows


def too_many_rows(max_rows: int) -> Message:
    """One refusal for a batch over the limit, JSON or CSV (a CSV is read no further than one row past it)."""
    return _("at most {max_rows} rows per batch", max_rows=max_rows)


def check_header(header: list[str]) -> None:
    """Refuses a header naming a column twice, or without every required column or with a column that is not one of
    CSV_COLUMNS, naming both kinds in the detail (``missing: level; unexpected: lvl``) and each column in ``errors``."""
    missing = [c for c in CSV_COLUMNS if c not in header and c not in _OPTIONAL_COLUMNS]
    unknown = [_column_label(i, c) for i, c in enumerate(header) if c not in CSV_COLUMNS]
    repeated = sorted({c for c in header if c in CSV_COLUMNS and header.count(c) > 1}, key=header.index)
    if repeated:  # which of two values would count is anyone's guess
        errors = [FieldError(field=c, message=_("column given more than once"), row=0) for c in repeated]
        detail = _("the CSV header names a column more than once: {columns}", columns=", ".join(repeated))
        raise BatchRejected(detail, errors=errors)
    if not missing and not unknown:
        return
    errors = [FieldError(field=c, message=_("column missing from the CSV header"), row=0) for c in missing]
    errors += [FieldError(field=c, message=_("unknown column"), row=0) for c in unknown]
    if missing and unknown:
        detail = _(
            "the CSV header does not match: missing: {missing}; unexpected: {unexpected}",
            missing=", ".join(missing),
            unexpected=", ".join(unknown),
        )
    elif missing:
        detail = _("the CSV header does not match: missing: {missing}", missing=", ".join(missing))
    else:
        detail = _("the CSV header does not match: unexpected: {unexpected}", unexpected=", ".join(unknown))
    raise BatchRejected(detail, errors=errors)


def rows_from_csv(text: str, *, max_rows: int | None = None) -> list[Row]:
    """CSV text (lines split on LF only) with the columns of CSV_COLUMNS."""
    header, records = read_csv(io.StringIO(text, newline="\n"))
    return rows_from_records(header, records, max_rows=max_rows)


def parse_rows(rows: Sequence[Any], *, today: date | None = None) -> tuple[list[tuple[int, Award]], list[Refusal]]:
    """(row number, award) for every row that reads as a certificate request, and a refusal for each problem of the
    others; rows are numbered from 1, as a person counts them. Every row is judged on one day: ``today``, by default
    the registry's (``clock.today()``) as the call begins."""
    context = {TODAY: clock.today() if today is None else today}
    awards: list[tuple[int, Award]] = []
    refusals: list[Refusal] = []
    for number, row in enumerate(rows, start=1):
        if isinstance(row, Unreadable):
            refusals.append(Refusal(number, row.field, row.message))
            continue
        try:
            awards.append((number, Award.of(CertificateIssue.model_validate(row, context=context))))
        except ValidationError as exc:
            refusals.extend(
                Refusal(number, error.field, error.message)
                for error in field_errors(exc.errors(), row=number, whole="row")
            )
    return awards, refusals


async def parsed_chunks(
    settings: Settings, rows: Sequence[Any], *, today: date
) -> AsyncGenerator[tuple[list[tuple[int, Award]], list[Refusal]], None]:
    """``parse_rows`` of a batch or an import chunk a chunk at a time, in row order and numbered as in the whole,
    every row judged on ``today`` wherever it runs: shared among the worker processes (``REGISTRY_BATCH_WORKERS``)
    when there are enough rows to pay for the hand-over, else in this process (then as one chunk). Validation is the
    largest share of a batch that this process would otherwise do alone before anything can be signed; with two
    workers it took about two thirds of the time on an idle machine, and this process screens each chunk as it comes
    back (``issuance.screen_rows``; benchmarks/README.md, "Rows validated in the workers")."""
    pool = workers.pool_for(len(rows), count=settings.batch_worker_count, min_rows=settings.batch_parallel_min_rows)
    if pool is None:
        yield parse_rows(rows, today=today)
        return
    size = min(PARSE_CHUNK_ROWS, -(-len(rows) // settings.batch_worker_count))  # a small batch: one chunk per worker
    handed = workers.hand_over(pool, functools.partial(_parse_plain, today), rows, size=size)
    start = 0
    async with contextlib.aclosing(workers.results(handed)) as results:  # closing this closes it: nothing stays queued
        async for plain, refused in results:
            awards = [(start + row, _award(facts)) for row, *facts in plain]
            yield awards, [replace(refusal, row=start + refusal.row) for refusal in refused]
            start += handed.size


def _parse_plain(today: date, rows: Sequence[Any]) -> tuple[list[_PlainAward], list[Refusal]]:
    """``parse_rows`` with each award as plain values (``_PlainAward``), in a worker process (``parsed_chunks``)."""
    awards, refusals = parse_rows(rows, today=today)
    plain: list[_PlainAward] = [
        (row, a.cert_type.value, a.catalogue_code, a.level, a.holder_name, a.id_type.value, a.id_number, *_dates(a))
        for row, a in awards
    ]
    return plain, refusals


def _dates(award: Award) -> tuple[date, date | None, str | None]:
    return award.awarded_on, award.valid_until, award.evaluation_batch


def _award(facts: Sequence[Any]) -> Award:
    cert_type, catalogue_code, level, name, id_type, id_number, awarded_on, valid_until, batch = facts
    return Award(
        CertType(cert_type), catalogue_code, level, name, IdType(id_type), id_number, awarded_on, valid_until, batch
    )


class _Taken:
    """The lines the csv reader has taken for the record it is reading, so a record it refuses can be looked at."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self._taken: list[str] = []

    def __iter__(self) -> _Taken:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._taken.append(line)
        return line

    def take(self) -> str:
        text, self._taken = "".join(self._taken), []
        return text


def _structural_problem(text: str, exc: csv.Error) -> tuple[int | None, str]:
    """(column, message) for a record the csv reader refused: which cell is too long or holds a bare CR."""
    limit = csv.field_size_limit()
    column, length, quoted, opened, escaped = 0, 0, False, 0, False
    for index, char in enumerate(text):
        if escaped:  # the second quote of a doubled one inside a quoted value: a quote in the value
            escaped = False
            length += 1
            continue
        if char == '"' and (quoted or length == 0):  # as the csv module reads: a quote opens only a value's start
            if quoted and text[index + 1 : index + 2] == '"':
                escaped = True
                continue
            quoted, opened = not quoted, column
            continue
        if char == "," and not quoted:
            column, length = column + 1, 0
            continue
        if char == "\r" and not quoted and text[index + 1 : index + 2] not in ("\n", ""):
            return column, BARE_CR
        length += 1
        if length > limit:
            return column, _("is longer than {limit} characters, the most a CSV value may hold", limit=limit)
    if quoted:
        return opened, UNCLOSED_QUOTE
    if "expected after" in str(exc):  # strict mode: '"ab"c'
        return None, _(
            "has text after a closing double quote: put the whole value in double quotes and double each quote in it"
        )
    return None, _("cannot be read as CSV ({reason})", reason=str(exc))


def _field_of(header: list[str], column: int | None) -> str:
    """A column as the field it fills, named as a JSON row's field would be (``holder_name`` -> ``holder.name``)."""
    if column is None or column >= len(header) or header[column] not in CSV_COLUMNS:
        return "row"
    name = header[column]
    return "holder." + name.removeprefix("holder_") if name.startswith("holder_") else name


def _column_label(index: int, name: str) -> str:
    """An unknown column as the error names it: its header text when that reads as a column name someone typed
    (``lvl``, `` level``, ``LEVEL``), else its position (``column 6``). A file without its header row has its first
    row read as the header: a holder's name, a date or an identity number must not be echoed back as a column."""
    plausible = _COLUMN_NAME.fullmatch(name.strip()) is not None and _DIGIT_RUN.search(name) is None
    return name if plausible else f"column {index + 1}"


def _as_read(text: str) -> str:
    text = text[:_ECHOED_CHARACTERS].rstrip("\r\n")
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
