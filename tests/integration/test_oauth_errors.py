"""The token endpoint's refusals are RFC 9457 problems that also carry RFC 6749 §5.2's ``error`` code and
``error_description`` (what an OAuth client library reads), and a client that failed to authenticate is challenged
with HTTP Basic, the scheme the endpoint takes — not RFC 6750's Bearer of the resource endpoints."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.checks import assert_problem
from tests.integration.auth_support import World, make_world


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient) -> World:
    return await make_world(app, client)


def _oauth(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """A problem (every member kept) with the OAuth ``error`` code and the detail as its ``error_description``."""
    problem = assert_problem(response, status)
    assert problem.get("error") == error, problem
    assert problem["error_description"] == problem["detail"], problem
    return problem


@pytest.mark.parametrize("how", ["basic", "form"])
async def test_a_wrong_secret_is_invalid_client_with_a_basic_challenge(
    client: httpx.AsyncClient, world: World, how: str
) -> None:
    """Before: no ``error`` member, and ``WWW-Authenticate: Bearer error="invalid_token"`` to a Basic client."""
    if how == "basic":
        basic = base64.b64encode(f"{world.issuer_client_id}:wrong".encode()).decode()
        request = {"data": {"grant_type": "client_credentials"}, "headers": {"Authorization": f"Basic {basic}"}}
    else:
        form = {"grant_type": "client_credentials", "client_id": world.issuer_client_id, "client_secret": "wrong"}
        request = {"data": form}

    response = await client.post("/oauth/token", **request)  # type: ignore[arg-type]

    problem = _oauth(response, 401, "invalid_client")
    assert problem["type"].endswith("/invalid-client")
    assert response.headers["www-authenticate"] == 'Basic realm="registry", charset="UTF-8"'
    # A resource endpoint's refusal is left as it was: a Bearer challenge, no OAuth members.
    elsewhere = await client.get("/v1/clients", headers={"Authorization": "Bearer not-a-token"})
    assert elsewhere.headers["www-authenticate"].startswith("Bearer")
    assert "error" not in assert_problem(elsewhere, 401)


async def test_the_error_code_stays_while_the_description_is_in_the_readers_language(
    client: httpx.AsyncClient, world: World
) -> None:
    form = {"grant_type": "client_credentials", "client_id": world.issuer_client_id, "client_secret": "wrong"}
    response = await client.post("/oauth/token", data=form, headers={"Accept-Language": "zh-CN"})

    problem = _oauth(response, 401, "invalid_client")
    assert response.headers["content-language"] == "zh-CN"
    assert problem["error_description"] != "client_id or client_secret is wrong"


async def test_another_grant_is_unsupported_grant_type(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", data={"grant_type": "password", "username": "a", "password": "b"})
    assert _oauth(response, 400, "unsupported_grant_type")["type"].endswith("/unsupported-grant-type")


async def test_a_scope_the_client_lacks_is_invalid_scope(client: httpx.AsyncClient, world: World) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": world.issuer_client_id,
        "client_secret": world.issuer_client_secret,
        "scope": "catalogue:write",
    }
    _oauth(await client.post("/oauth/token", data=form), 400, "invalid_scope")


async def test_a_missing_field_or_another_format_is_invalid_request(client: httpx.AsyncClient) -> None:
    """The status the API gives these everywhere is kept (422 naming the field, 415 naming the format)."""
    missing = await client.post("/oauth/token", data={"client_id": "trc_x", "client_secret": "x"})
    assert _oauth(missing, 422, "invalid_request")["errors"][0]["field"] == "grant_type"
    as_json = await client.post("/oauth/token", json={"grant_type": "client_credentials"})
    _oauth(as_json, 415, "invalid_request")


@pytest.mark.parametrize("sent", ["with-content-length", "chunked"])
async def test_a_body_over_the_size_limit_is_invalid_request(client: httpx.AsyncClient, sent: str) -> None:
    """Before: the 413 (refused at its Content-Length, or once a chunked body passed the limit) had no ``error``."""
    form = b"grant_type=client_credentials&client_id=trc_x&client_secret=" + b"a" * (2 << 20)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(form), 64 << 10):
            yield form[start : start + (64 << 10)]

    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept-Language": "zh-CN"}
    body = form if sent == "with-content-length" else chunks()
    response = await client.post("/oauth/token", content=body, headers=headers)

    assert ("content-length" in response.request.headers) == (sent == "with-content-length")
    problem = _oauth(response, 413, "invalid_request")
    assert problem["type"].endswith("/http-413")
    assert problem["instance"] == "/oauth/token"
    assert response.headers["content-language"] == "zh-CN"
    assert "1048576" in problem["error_description"], problem
    # Elsewhere a 413 stays a plain problem.
    elsewhere = await client.post("/v1/verify", content=form, headers=headers)
    assert "error" not in assert_problem(elsewhere, 413)
