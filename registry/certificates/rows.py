"""Rows of a batch or an import file: CSV with the batch columns, or JSON objects shaped like a single issuance,
turned into awards — and every row that cannot be read, with its row number and the field at fault.

A row is checked against the same request schema as ``POST /v1/certificates`` and its errors are named by the same
function (``errors.field_errors``), so a bad value reads the same whichever way it was sent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from registry.certificates.awards import Award, Refusal
from registry.certificates.schemas import CertificateIssue
from registry.errors import BatchRejected, FieldError, InvalidInput, field_errors

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
_EXTRA_VALUES = "__extra_values__"


def rows_from_csv(text: str, *, max_rows: int | None = None) -> list[dict[str, Any]]:
    """CSV with the columns of CSV_COLUMNS (header required); holder_* columns become the nested holder object.
    Stops reading as soon as there are more than ``max_rows`` rows."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in CSV_COLUMNS if c not in header and c not in _OPTIONAL_COLUMNS]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        errors = [FieldError(field=c, message="column missing from the CSV header", row=0) for c in missing]
        errors += [FieldError(field=c, message="unknown column", row=0) for c in unknown]
        raise BatchRejected("the CSV header does not match", errors=errors)
    rows: list[dict[str, Any]] = []
    for record in reader:
        if max_rows is not None and len(rows) >= max_rows:
            raise InvalidInput.field("certificates", f"at most {max_rows} rows per batch")
        if None in record:
            rows.append({_EXTRA_VALUES: True})
            continue
        # An empty cell is a value not given, as if the key were left out of a JSON row: "Field required" for a
        # required column, the default for an optional one.
        given = {key: value for key, value in record.items() if value not in ("", None)}
        row: dict[str, Any] = {key: value for key, value in given.items() if not key.startswith("holder_")}
        row["holder"] = {
            key.removeprefix("holder_"): value for key, value in given.items() if key.startswith("holder_")
        }
        rows.append(row)
    return rows


def parse_rows(rows: Sequence[Any]) -> tuple[list[tuple[int, Award]], list[Refusal]]:
    """(row number, award) for every row that reads as a certificate request, and a refusal for each problem of the
    others; rows are numbered from 1, as a person counts them."""
    awards: list[tuple[int, Award]] = []
    refusals: list[Refusal] = []
    for number, row in enumerate(rows, start=1):
        if isinstance(row, dict) and row.get(_EXTRA_VALUES):
            refusals.append(Refusal(number, "row", "more values than header columns"))
            continue
        try:
            awards.append((number, Award.of(CertificateIssue.model_validate(row))))
        except ValidationError as exc:
            refusals.extend(
                Refusal(number, error.field, error.message)
                for error in field_errors(exc.errors(), row=number, whole="row")
            )
    return awards, refusals
