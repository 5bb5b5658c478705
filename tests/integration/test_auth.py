"""Authorisation (who may call what) and the OAuth token endpoint."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.certificates import numbering
from registry.config import Settings
from tests.checks import assert_problem, row_counts
from tests.factories import (
    bearer,
    certificate_body,
    create_client,
    create_issuer,
    issued_certificate,
    issuer_body,
    token_for,
)
from tests.integration.auth_support import (
    ISSUER_CODE,
    PRIVATE_JWK_MEMBERS,
    World,
    make_world,
    unverified_claims,
)


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient) -> World:
    return await make_world(app, client)


# --- authorisation -------------------------------------------------------------------------------------------------


def _admin_requests() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("/v1/issuers", issuer_body("BJ-NEW-BODY")),
        ("/v1/clients", {"role": "admin", "name": "another admin"}),
        (
            "/v1/catalogue",
            {
                "code": "ENG-QUANTUM",
                "cert_type": "title",
                "series_zh": "工程技术",
                "name_zh": "量子信息",
                "name_en": "Quantum information",
                "levels": ["intermediate", "associate_senior", "senior"],
                "effective_from": "2026-01-01",
            },
        ),
    ]


@pytest.mark.parametrize(("path", "body"), _admin_requests(), ids=["issuers", "clients", "catalogue"])
async def test_a_partner_cannot_use_admin_endpoints(
    app: FastAPI, client: httpx.AsyncClient, world: World, path: str, body: dict[str, Any]
) -> None:
    partner = await token_for(client, *await create_client(app, role=Role.partner, region="TJ"))
    before = await row_counts(app)
    response = await client.post(path, json=body, headers=bearer(partner))
    assert_problem(response, 403)
    assert await row_counts(app) == before


@pytest.mark.parametrize(("path", "body"), _admin_requests(), ids=["issuers", "clients", "catalogue"])
async def test_an_evaluation_body_cannot_use_admin_endpoints(
    app: FastAPI, client: httpx.AsyncClient, world: World, path: str, body: dict[str, Any]
) -> None:
    before = await row_counts(app)
    response = await client.post(path, json=body, headers=bearer(world.issuer))
    assert_problem(response, 403)
    assert await row_counts(app) == before


async def test_an_admin_cannot_issue_certificates(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    before = await row_counts(app)
    response = await client.post("/v1/certificates", json=certificate_body(), headers=bearer(world.admin))
    assert_problem(response, 403)
    assert await row_counts(app) == before


async def test_a_partner_cannot_issue_certificates(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    partner = await token_for(client, *await create_client(app, role=Role.partner, region="TJ"))
    before = await row_counts(app)
    response = await client.post("/v1/certificates", json=certificate_body(), headers=bearer(partner))
    assert_problem(response, 403)
    assert await row_counts(app) == before


async def test_a_token_asked_for_with_a_narrower_scope_cannot_issue(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    reader = await token_for(client, world.issuer_client_id, world.issuer_client_secret, scope="certificates:read")
    assert unverified_claims(reader)["scope"] == "certificates:read"
    before = await row_counts(app)
    response = await client.post("/v1/certificates", json=certificate_body(), headers=bearer(reader))
    assert_problem(response, 403)
    assert await row_counts(app) == before
    assert (await client.get("/v1/certificates", headers=bearer(reader))).status_code == 200


async def test_another_bodys_certificate_is_not_found_and_not_listed(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    certificate = await issued_certificate(client, world.issuer)
    await create_issuer(client, world.admin, code="BJ-OTHER-BODY")
    other = await token_for(client, *await create_client(app, role=Role.issuer, issuer_code="BJ-OTHER-BODY"))

    theirs = await client.get(f"/v1/certificates/{certificate['number']}", headers=bearer(other))
    missing_number = numbering.new_number(region="BJ", cert_type="title", year=2026)
    missing = await client.get(f"/v1/certificates/{missing_number}", headers=bearer(other))
    theirs_problem = assert_problem(theirs, 404)
    missing_problem = assert_problem(missing, 404)
    # Answers exactly like a number that does not exist: nothing but the number itself differs.
    assert theirs_problem["type"] == missing_problem["type"]
    assert theirs_problem["title"] == missing_problem["title"]
    assert theirs_problem["detail"].replace(certificate["number"], "N") == missing_problem["detail"].replace(
        missing_number, "N"
    )
    assert certificate["holder"]["name"] not in theirs.text

    listed = await client.get("/v1/certificates", headers=bearer(other))
    assert listed.status_code == 200, listed.text
    assert certificate["number"] not in [c["number"] for c in listed.json()["data"]]
    assert certificate["number"] not in listed.text

    own = await client.get(f"/v1/certificates/{certificate['number']}", headers=bearer(world.issuer))
    assert own.status_code == 200


# --- the token endpoint --------------------------------------------------------------------------------------------


def _issuer_form(world: World) -> dict[str, str]:
    """A token request with the issuer client's own credentials."""
    return {
        "grant_type": "client_credentials",
        "client_id": world.issuer_client_id,
        "client_secret": world.issuer_client_secret,
    }


async def test_token_request_with_a_wrong_secret_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    form = {"grant_type": "client_credentials", "client_id": world.issuer_client_id, "client_secret": "wrong"}
    response = await client.post("/oauth/token", data=form)
    assert_problem(response, 401)
    assert "access_token" not in response.text


async def test_token_request_for_an_unknown_client_answers_like_a_wrong_secret(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    unknown = {"grant_type": "client_credentials", "client_id": "trc_00000000000000000000", "client_secret": "x"}
    wrong = {"grant_type": "client_credentials", "client_id": world.issuer_client_id, "client_secret": "x"}
    unknown_problem = assert_problem(await client.post("/oauth/token", data=unknown), 401)
    wrong_problem = assert_problem(await client.post("/oauth/token", data=wrong), 401)
    assert unknown_problem == wrong_problem


async def test_token_request_with_the_password_grant_is_a_bad_request(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    form = {
        "grant_type": "password",
        "client_id": world.issuer_client_id,
        "client_secret": world.issuer_client_secret,
        "username": "admin",
        "password": "admin",
    }
    response = await client.post("/oauth/token", data=form)
    assert_problem(response, 400)
    assert "access_token" not in response.text


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
async def test_token_request_in_another_format_is_415_naming_it(
    app: FastAPI, client: httpx.AsyncClient, world: World, content_type: str | None
) -> None:
    """Before, a JSON body carrying every field was told "grant_type: is required" (422)."""
    form = _issuer_form(world)
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/oauth/token", content=json.dumps(form).encode(), headers=headers)
    problem = assert_problem(response, 415, slug="unsupported-media-type")
    assert f"content type {content_type or 'none'} is not accepted" in problem["detail"]
    assert "send application/x-www-form-urlencoded" in problem["detail"]
    chinese = await client.post(
        "/oauth/token", content=json.dumps(form).encode(), headers={**headers, "Accept-Language": "zh"}
    )
    assert "表单编码" in assert_problem(chinese, 415)["detail"]


async def test_token_request_as_multipart_form_data_works(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    form = _issuer_form(world)
    response = await client.post("/oauth/token", files={k: (None, v) for k, v in form.items()})
    assert response.status_code == 200, response.text


async def test_token_request_with_no_body_says_what_is_required(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post("/oauth/token", content=b"", headers={"Content-Type": "application/json"})
    assert_problem(response, 422, field="grant_type", message="is required")


@pytest.mark.parametrize("scope", ["catalogue:write", "certificates:read issuers:write", "everything"])
async def test_token_request_for_a_scope_the_client_lacks_is_a_bad_request(
    app: FastAPI, client: httpx.AsyncClient, world: World, scope: str
) -> None:
    form = {**_issuer_form(world), "scope": scope}
    response = await client.post("/oauth/token", data=form)
    assert_problem(response, 400, slug="invalid-scope")
    assert "access_token" not in response.text


async def test_token_request_with_http_basic_client_authentication_works(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    credentials = f"{quote(world.issuer_client_id, safe='')}:{quote(world.issuer_client_secret, safe='')}"
    basic = base64.b64encode(credentials.encode()).decode()
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert (await client.get("/v1/certificates", headers=bearer(token))).status_code == 200


async def test_token_request_with_http_basic_and_a_wrong_secret_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    basic = base64.b64encode(f"{world.issuer_client_id}:wrong".encode()).decode()
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert_problem(response, 401)


async def test_token_response_is_not_cacheable_and_names_its_type_and_lifetime(
    app: FastAPI, client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    form = _issuer_form(world)
    response = await client.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["Cache-Control"]
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert set(body["scope"].split()) == {"certificates:issue", "certificates:read", "certificates:revoke"}


async def test_access_token_header_names_at_jwt_eddsa_and_a_published_kid_whose_key_verifies_it(
    app: FastAPI, client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    header = jwt.get_unverified_header(world.issuer)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "EdDSA"
    jwks = (await client.get("/.well-known/jwks.json")).json()
    published = {key["kid"]: key for key in jwks["keys"]}
    assert header["kid"] in published
    jwk = published[header["kid"]]
    assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4)))
    claims = jwt.decode(
        world.issuer,
        key=public,
        algorithms=["EdDSA"],
        audience=settings.token_audience,
        issuer=settings.token_issuer,
    )
    assert claims["sub"] == world.issuer_client_id


async def test_issuer_token_claims_name_the_client_its_role_scopes_and_evaluation_body(
    app: FastAPI, client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    claims = unverified_claims(world.issuer)
    for name in ("iss", "aud", "sub", "role", "scope", "iat", "exp", "jti", "issuer_code"):
        assert name in claims, f"access token lacks {name!r}: {claims}"
    assert claims["iss"] == settings.token_issuer
    assert claims["aud"] == settings.token_audience
    assert claims["sub"] == world.issuer_client_id
    assert claims["role"] == "issuer"
    assert set(claims["scope"].split()) == {"certificates:issue", "certificates:read", "certificates:revoke"}
    assert claims["issuer_code"] == ISSUER_CODE
    assert "region" not in claims
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds
    uuid.UUID(claims["jti"])

    again = unverified_claims(await token_for(client, world.issuer_client_id, world.issuer_client_secret))
    assert again["jti"] != claims["jti"]


async def test_partner_token_claims_name_the_region_and_no_evaluation_body(
    app: FastAPI, client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    client_id, secret = await create_client(app, role=Role.partner, region="TJ")
    claims = unverified_claims(await token_for(client, client_id, secret))
    for name in ("iss", "aud", "sub", "role", "scope", "iat", "exp", "jti", "region"):
        assert name in claims, f"access token lacks {name!r}: {claims}"
    assert claims["role"] == "partner"
    assert claims["region"] == "TJ"
    assert claims["scope"] == "recognition:read"
    assert claims["sub"] == client_id
    assert "issuer_code" not in claims


async def test_jwks_never_publishes_a_private_key_member(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    await create_issuer(client, world.admin, code="BJ-OTHER-BODY")
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    published = response.json()["keys"]
    assert len(published) >= 3  # the registry's token key and two evaluation bodies' signing keys
    for jwk in published:
        assert not PRIVATE_JWK_MEMBERS & jwk.keys(), f"private member in {jwk}"
        # A body's key is listed under its short kid ("EdDSA", as older credentials say) and its URL ("Ed25519").
        assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
        assert jwk["alg"] == ("Ed25519" if jwk["kid"].startswith("http") else "EdDSA")
        assert len(base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))) == 32
