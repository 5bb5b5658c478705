"""The format of a body: a single issuance and a batch take the same JSON media types, and refuse the same others with
415 naming the type sent (before, a single request in text/plain or text/csv, or with no Content-Type, was told its
valid JSON object "must be an object")."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from registry.certificates.rows import CSV_COLUMNS
from tests.checks import assert_problem, leaves_no_trace
from tests.factories import bearer, certificate_body, ready_issuer


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded", None])
async def test_a_json_body_sent_as_another_format_is_415_on_single_and_batch_alike(
    app: FastAPI, client: httpx.AsyncClient, content_type: str | None
) -> None:
    token = await ready_issuer(app, client)
    headers = {**bearer(token), "Idempotency-Key": "media"} | ({"Content-Type": content_type} if content_type else {})
    for path, body in (
        ("/v1/certificates", certificate_body()),
        ("/v1/certificate-batches", {"certificates": [certificate_body()]}),
    ):
        sent = client.post(path, content=json.dumps(body).encode(), headers=headers)
        response = await leaves_no_trace(app, sent)
        problem = assert_problem(response, 415, slug="unsupported-media-type")
        assert (content_type or "none") in problem["detail"], (path, problem)


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain", "text/csv"])
async def test_an_empty_body_is_required_on_single_and_batch_alike(
    app: FastAPI, client: httpx.AsyncClient, content_type: str | None
) -> None:
    """Before, a batch with no body was 415 (no or a text/plain type), "not valid JSON" or "the CSV header does not
    match", where a single request said the body is required."""
    token = await ready_issuer(app, client)
    headers = {**bearer(token), "Idempotency-Key": "empty"} | ({"Content-Type": content_type} if content_type else {})
    for path in ("/v1/certificates", "/v1/certificate-batches"):
        response = await leaves_no_trace(app, client.post(path, content=b"", headers=headers))
        assert_problem(response, 422, field="body", message="is required")


async def test_a_structured_json_type_is_json_on_single_and_batch_alike(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    token = await ready_issuer(app, client)
    headers = {**bearer(token), "Content-Type": "application/vnd.registry+json; charset=utf-8"}
    single = await client.post("/v1/certificates", content=json.dumps(certificate_body()).encode(), headers=headers)
    assert single.status_code == 201, single.text
    batch = {"certificates": [certificate_body()]}
    headers["Idempotency-Key"] = "vnd-json"
    response = await client.post("/v1/certificate-batches", content=json.dumps(batch).encode(), headers=headers)
    assert response.status_code == 201, response.text


async def test_a_json_array_sent_as_json_is_still_422_naming_the_body(app: FastAPI, client: httpx.AsyncClient) -> None:
    token = await ready_issuer(app, client)
    response = await client.post("/v1/certificates", json=[certificate_body()], headers=bearer(token))
    assert_problem(response, 422, field="body", message="must be an object")


@pytest.mark.parametrize("charset", ["gbk", "GB18030", "latin-1", "no-such-charset"])
async def test_a_csv_batch_in_a_charset_other_than_utf8_is_415_naming_it(
    app: FastAPI, client: httpx.AsyncClient, charset: str
) -> None:
    """Before, the body was read as UTF-8 anyway and every Chinese cell was refused as "not UTF-8"."""
    token = await ready_issuer(app, client)
    headers = {**bearer(token), "Idempotency-Key": "charset", "Content-Type": f"text/csv; charset={charset}"}
    response = await leaves_no_trace(app, client.post("/v1/certificate-batches", content=b"x", headers=headers))
    problem = assert_problem(response, 415, slug="unsupported-media-type")
    assert charset in problem["detail"]


@pytest.mark.parametrize(
    "content_type",
    [
        "text/csv; charset=UTF-8",
        'text/csv; charset="utf-8"',
        "text/csv; charset=utf_8",
        "text/csv; charset=utf-8-sig",
        "text/csv; charset=us-ascii",
        "text/csv; charset=",
        "application/json; charset=gbk",  # JSON is UTF-8 whatever its label, on a single request too
    ],
)
async def test_utf8_under_any_name_ascii_or_no_label_is_read(
    app: FastAPI, client: httpx.AsyncClient, content_type: str
) -> None:
    token = await ready_issuer(app, client)
    row = certificate_body()
    if content_type.startswith("text/csv"):
        columns = list(CSV_COLUMNS)
        cells = {
            **{k: v for k, v in row.items() if k != "holder"},
            **{f"holder_{k}": v for k, v in row["holder"].items()},
        }
        content = (",".join(columns) + "\n" + ",".join(str(cells.get(c) or "") for c in columns) + "\n").encode()
    else:
        content = json.dumps({"certificates": [row]}).encode()
    headers = {**bearer(token), "Idempotency-Key": "utf8-names", "Content-Type": content_type}
    response = await client.post("/v1/certificate-batches", content=content, headers=headers)
    assert response.status_code == 201, response.text


async def test_a_content_type_that_is_not_one_is_named_as_sent_on_single_and_batch(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    token = await ready_issuer(app, client)
    headers = {**bearer(token), "Idempotency-Key": "named", "Content-Type": "json"}
    for path in ("/v1/certificates", "/v1/certificate-batches"):
        response = await client.post(path, content=b"{}", headers=headers)
        problem = assert_problem(response, 415, slug="unsupported-media-type")
        assert "content type json is not accepted" in problem["detail"], problem
        assert problem["title"] == "This body format is not accepted"
    assert "send application/json or text/csv" in problem["detail"]


async def test_json_nested_past_the_interpreters_depth_is_422_not_500(app: FastAPI, client: httpx.AsyncClient) -> None:
    token = await ready_issuer(app, client)
    body = b'{"certificates": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    headers = {**bearer(token), "Idempotency-Key": "deep", "Content-Type": "application/json"}
    response = await client.post("/v1/certificate-batches", content=body, headers=headers)
    assert_problem(response, 422, field="body", message="not valid JSON")


@pytest.mark.parametrize("count", [0, 10_001])
async def test_a_batch_of_no_rows_or_too_many_is_refused_in_the_same_words_as_json_and_csv(
    app: FastAPI, client: httpx.AsyncClient, count: int
) -> None:
    """Before, JSON said "must not be empty" and "at most 10000 items" where CSV said "the batch has no rows" and
    "at most 10000 rows per batch"."""
    token = await ready_issuer(app, client)
    words = "the batch has no rows" if count == 0 else "at most 10000 rows per batch"
    header = ",".join(CSV_COLUMNS) + "\n"
    for content_type, content in (
        ("application/json", json.dumps({"certificates": [{"x": 1}] * count}).encode()),
        ("text/csv", (header + "x\n" * count).encode()),
    ):
        headers = {**bearer(token), "Idempotency-Key": f"count-{content_type}", "Content-Type": content_type}
        response = await leaves_no_trace(app, client.post("/v1/certificate-batches", content=content, headers=headers))
        problem = assert_problem(response, 422, field="certificates")
        assert [error["message"] for error in problem["errors"]] == [words], (content_type, problem)
