"""An identity number in the wrong column — a CSV row whose unquoted comma shifted it into ``level`` or
``catalogue_code``, or a careless client — is refused naming the column, never echoing the number whole: in a single
issuance's answer, in a batch's, and in what ``registry import`` sets aside with its reasons."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from registry.certificates.rows import CSV_COLUMNS
from tests.checks import assert_problem
from tests.factories import bearer, certificate_body, ready_issuer, resident_id

HOLDER = {"name": "冯十", "id_type": "resident_id"}


async def test_an_identity_number_sent_as_the_level_or_the_catalogue_code_is_not_echoed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    token = await ready_issuer(app, client)
    number = resident_id(birth="19790315")
    holder = {**HOLDER, "id_number": number}
    for column in ("level", "catalogue_code"):
        body = {**certificate_body(holder=holder), column: number}
        refused = await client.post("/v1/certificates", json=body, headers=bearer(token))
        problem = assert_problem(refused, 422, field=column, secret=number)
        assert f"{number[:2]}**************{number[-2:]}" in problem["errors"][0]["message"], problem


async def test_a_csv_batch_with_the_identity_column_pasted_over_the_level_does_not_echo_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    token = await ready_issuer(app, client)
    number = resident_id(birth="19790316")
    row = {**certificate_body(), "holder_name": "冯十", "holder_id_type": "resident_id", "holder_id_number": number}
    row["level"] = number  # a spreadsheet's identity column pasted over its level column too
    cells = ["" if row.get(column) is None else str(row[column]) for column in CSV_COLUMNS]
    content = ",".join(CSV_COLUMNS) + "\n" + ",".join(cells) + "\n"
    headers = {**bearer(token), "Content-Type": "text/csv", "Idempotency-Key": "pasted-over-level"}
    refused = await client.post("/v1/certificate-batches", content=content.encode(), headers=headers)
    problem = assert_problem(refused, 422, field="level", secret=number)
    assert [error["row"] for error in problem["errors"]] == [1], problem
