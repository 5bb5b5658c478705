"""CSV that cannot be read as cells: the same bad bytes, uploaded to ``POST /v1/certificate-batches`` (text/csv) and
given to ``registry import``, are refused alike — the upload with 422 naming the row and field and nothing issued, the
import with the row set aside for the same reason and the good row beside it issued. Never a 500.

And the CSV files the registry writes (``FILE.rejected.csv``, ``FILE.issued.csv``) never hand a spreadsheet a formula.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.certificates import imports
from registry.certificates.rows import CSV_COLUMNS
from registry.errors import BatchRejected
from tests.checks import assert_problem, leaves_no_trace, row_counts
from tests.factories import bearer, certificate_body, ready_issuer, resident_id

ISSUER = "BJ-AI-COMMITTEE"
FIELD_LIMIT = csv.field_size_limit()


def _line(**cells: str) -> bytes:
    """One data row as CSV bytes: a valid award for a new holder, with ``cells`` written over it exactly as given
    (no quoting, no encoding: the test decides every byte)."""
    body = certificate_body()
    values = {
        **{key: str(value) for key, value in body.items() if key != "holder" and value is not None},
        **{f"holder_{key}": value for key, value in body["holder"].items()},
        "holder_id_number": resident_id(),
    }
    raw = {column: values.get(column, "").encode() for column in CSV_COLUMNS}
    raw.update({column: value.encode("utf-8", "surrogateescape") for column, value in cells.items()})
    return b",".join(raw[column] for column in CSV_COLUMNS) + b"\n"


def _file(*lines: bytes) -> bytes:
    return ",".join(CSV_COLUMNS).encode() + b"\n" + b"".join(lines)


@dataclass(frozen=True)
class BadCsv:
    name: str
    line: bytes
    field: str
    words: str

    def __repr__(self) -> str:
        return self.name


GBK_NAME = "张三".encode("gbk").decode("utf-8", "surrogateescape")
BAD_CSV = [
    BadCsv("a value over the csv module's limit", _line(holder_name="张" * (FIELD_LIMIT + 1)), "holder.name", "longer"),
    BadCsv("a bare CR inside an unquoted value", _line(evaluation_batch="2026\rBJ"), "evaluation_batch", "CR"),
    BadCsv("a bare CR in the name", _line(holder_name="张\r三"), "holder.name", "carriage return"),
    BadCsv("bytes that are not UTF-8 (a GBK name)", _line(holder_name=GBK_NAME), "holder.name", "not UTF-8"),
    BadCsv("a NUL byte in the name", _line(holder_name="张\x00三"), "holder.name", "control characters"),
    BadCsv(
        "a NUL byte in the identity number", _line(holder_id_number="11010519880712\x00001"), "holder.id_number", ""
    ),
    BadCsv("more values than columns", _line(evaluation_batch="B1,extra"), "row", "more values than header columns"),
    BadCsv("a double quote never closed", _line(holder_name='"学员二'), "holder.name", "never closed"),
    BadCsv("text after a closing double quote", _line(holder_name='"张"三'), "row", "after a closing double quote"),
    BadCsv(
        "a quote inside an unquoted value, then one never closed",
        _line(holder_name='张"三', evaluation_batch='"2026'),
        "evaluation_batch",
        "never closed",
    ),
]


def _errors_of_row(problem: dict[str, Any], row: int) -> dict[str, str]:
    return {error["field"]: error["message"] for error in problem["errors"] if error.get("row") == row}


@pytest.mark.parametrize("case", BAD_CSV, ids=[case.name for case in BAD_CSV])
async def test_unreadable_csv_is_refused_alike_by_upload_and_import(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path, case: BadCsv
) -> None:
    token = await ready_issuer(app, client)
    content = _file(_line(), case.line)
    headers = {**bearer(token), "Content-Type": "text/csv", "Idempotency-Key": "bad-csv"}

    response = await leaves_no_trace(app, client.post("/v1/certificate-batches", content=content, headers=headers))
    problem = assert_problem(response, 422, slug="batch-rejected", field=case.field, message=case.words)
    assert {error["row"] for error in problem["errors"]} == {2}, problem["errors"]
    message = _errors_of_row(problem, 2)[case.field]

    path = tmp_path / "round.csv"
    path.write_bytes(content)
    before = (await row_counts(app))["certificates"]
    summary = await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code=ISSUER)
    assert (summary.issued, summary.rejected) == (1, 1)
    assert (await row_counts(app))["certificates"] == before + 1
    rejected_text = path.with_suffix(".rejected.csv").read_text(encoding="utf-8")  # UTF-8 even for a GBK input
    [rejected] = list(csv.DictReader(io.StringIO(rejected_text, newline="")))
    assert rejected["row"] == "2"
    assert f"{case.field}: {message}" in rejected["reasons"]


async def test_a_quote_never_closed_takes_the_rows_after_it_and_is_refused_not_issued_in_part(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Before, the csv reader read to the end of the file inside the quote without complaint: the upload's 422 named
    only row 2 (its name "at most 64 characters"), and the import issued row 1 and reported two rows of five."""
    token = await ready_issuer(app, client)
    content = _file(_line(), _line(holder_name='"学员二'), _line(), _line(), _line())
    headers = {**bearer(token), "Content-Type": "text/csv", "Idempotency-Key": "open-quote"}
    response = await leaves_no_trace(app, client.post("/v1/certificate-batches", content=content, headers=headers))
    problem = assert_problem(response, 422, slug="batch-rejected", field="holder.name", message="never closed")
    assert _errors_of_row(problem, 2) == {"holder.name": problem["errors"][0]["message"]}, problem["errors"]

    path = tmp_path / "open-quote.csv"
    path.write_bytes(content)
    summary = await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code=ISSUER)
    assert (summary.issued, summary.rejected) == (1, 1)
    [rejected] = list(csv.DictReader(io.StringIO(path.with_suffix(".rejected.csv").read_text(encoding="utf-8"))))
    assert "never closed" in rejected["reasons"]


@pytest.mark.parametrize("column", ["level", "holder_id_number", "valid_until"])
async def test_a_header_naming_a_column_twice_is_refused_by_upload_and_import(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path, column: str
) -> None:
    """Before, the last of the two values counted: a certificate was issued at the level of the second column."""
    token = await ready_issuer(app, client)
    line = _line()
    value = line.rstrip(b"\n").split(b",")[CSV_COLUMNS.index(column)]
    content = (
        _file(line).replace(b"\n", f",{column}\n".encode(), 1).replace(line, line.rstrip(b"\n") + b"," + value + b"\n")
    )
    headers = {**bearer(token), "Content-Type": "text/csv", "Idempotency-Key": f"twice-{column}"}
    response = await leaves_no_trace(app, client.post("/v1/certificate-batches", content=content, headers=headers))
    problem = assert_problem(response, 422, slug="batch-rejected", field=column, message="more than once")
    assert problem["errors"][0]["row"] == 0

    path = tmp_path / "twice.csv"
    path.write_bytes(content)
    before = await row_counts(app)
    with pytest.raises(BatchRejected, match=f"more than once: {column}"):
        await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code=ISSUER)
    assert await row_counts(app) == before


async def test_a_header_that_is_not_utf8_is_refused_naming_the_header(app: FastAPI, client: httpx.AsyncClient) -> None:
    token = await ready_issuer(app, client)
    content = "证书类型".encode("gbk") + b"," + _file(_line())
    headers = {**bearer(token), "Content-Type": "text/csv", "Idempotency-Key": "bad-header"}
    response = await leaves_no_trace(app, client.post("/v1/certificate-batches", content=content, headers=headers))
    problem = assert_problem(response, 422, slug="batch-rejected", field="header", message="not UTF-8")
    assert problem["errors"][0]["row"] == 0


FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(A1:A9)", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "＝1+1"]


async def test_rejected_and_issued_files_never_hand_a_spreadsheet_a_formula(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Rows refused for their identity number, each with a formula in a cell; the rejected-rows file repeats every
    cell with a leading apostrophe where it starts like a formula, and leaves a plain negative number alone."""
    await ready_issuer(app, client)
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # the test's own input: written plainly, formulas and all
    for formula in FORMULAS:
        writer.writerow(["title", "ENG-EAI", "senior", formula, "resident_id", "-12", "2026-06-30", "", formula])
    path = tmp_path / "formulas.csv"
    path.write_bytes(_file(_line(), buffer.getvalue().encode()))

    summary = await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code=ISSUER)
    assert (summary.issued, summary.rejected) == (1, len(FORMULAS))

    with path.with_suffix(".rejected.csv").open(encoding="utf-8", newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert [row["holder_name"] for row in rejected] == ["'" + formula for formula in FORMULAS]
    assert [row["evaluation_batch"] for row in rejected] == ["'" + formula for formula in FORMULAS]
    assert {row["holder_id_number"] for row in rejected} == {"-12"}  # a number, not a formula: left as it is
    with path.with_suffix(".issued.csv").open(encoding="utf-8", newline="") as handle:
        issued = list(csv.reader(handle))
    assert len(issued) == 2
    for row in rejected:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r", "＝")), cell
