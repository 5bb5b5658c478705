"""The format of a body: a single issuance and a batch take the same JSON media types, and refuse the same others with
415 naming the type sent (before, a single request in text/plain or text/csv, or with no Content-Type, was told its
valid JSON object "must be an object")."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

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


@pytest.mark.parametrize("charset", ["gbk", "GB18030", "latin-1"])
async def test_a_batch_in_a_charset_other_than_utf8_is_415_naming_it(
    app: FastAPI, client: httpx.AsyncClient, charset: str
) -> None:
    """Before, the body was read as UTF-8 anyway and every Chinese cell was refused as "not UTF-8"."""
    token = await ready_issuer(app, client)
    headers = {**bearer(token), "Idempotency-Key": "charset", "Content-Type": f"text/csv; charset={charset}"}
    response = await leaves_no_trace(app, client.post("/v1/certificate-batches", content=b"x", headers=headers))
    problem = assert_problem(response, 415, slug="unsupported-media-type")
    assert charset.lower() in problem["detail"]
    headers["Content-Type"] = 'application/json; charset="UTF-8"'
    batch = json.dumps({"certificates": [certificate_body()]}).encode()
    assert (await client.post("/v1/certificate-batches", content=batch, headers=headers)).status_code == 201
