"""Holders signing in with an external identity provider's token (a locally generated provider key)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from tests.checks import assert_problem
from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token, resident_id
from tests.integration.holder_support import IDP_AUDIENCE, IDP_ISSUER, mock_identity_provider

ISSUER, AUDIENCE = IDP_ISSUER, IDP_AUDIENCE


def _provider(app: FastAPI, key: Ed25519PrivateKey) -> None:
    jwk: dict[str, Any] = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": "idp-1", "alg": "EdDSA", "use": "sig"})

    def serve(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == f"{ISSUER}/jwks.json"
        return httpx.Response(200, json={"keys": [jwk]})

    mock_identity_provider(app, serve)


def _id_token(key: Ed25519PrivateKey, number: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-1", "iat": now, "exp": now + 300, "id_number": number}
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "idp-1"})


async def test_holder_signs_in_with_the_identity_providers_token(app: FastAPI, client: httpx.AsyncClient) -> None:
    key = Ed25519PrivateKey.generate()
    _provider(app, key)
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    number = resident_id(birth="19950505")
    certificate = await issued_certificate(
        client, issuer, holder={"name": "冯十二", "id_type": "resident_id", "id_number": number}
    )
    session = await client.post("/v1/holder/sessions/external", json={"id_token": _id_token(key, number.lower())})
    assert session.status_code == 201, session.text
    listed = await client.get("/v1/holder/certificates", headers=bearer(session.json()["access_token"]))
    assert [c["number"] for c in listed.json()] == [certificate["number"]]


async def test_forged_expired_or_foreign_provider_tokens_are_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    key = Ed25519PrivateKey.generate()
    _provider(app, key)
    number = resident_id()
    cases = {
        "other key": _id_token(Ed25519PrivateKey.generate(), number),
        "expired": _id_token(key, number, exp=int(time.time()) - 60),
        "wrong audience": _id_token(key, number, aud="someone-else"),
        "wrong issuer": _id_token(key, number, iss="https://evil.example"),
        "bad id number": _id_token(key, number[:-1] + ("0" if number[-1] != "0" else "1")),
        "no certificates": _id_token(key, number),
    }
    for name, token in cases.items():
        response = await client.post("/v1/holder/sessions/external", json={"id_token": token})
        assert response.status_code == 401, name
        assert response.headers["content-type"] == "application/problem+json"
        assert number not in response.text


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
async def test_a_provider_token_with_a_time_claim_as_numeric_text_is_refused(
    app: FastAPI, client: httpx.AsyncClient, claim: str
) -> None:
    """The holder has a certificate and the token is the provider's own; only one time claim is text, not a number."""
    key = Ed25519PrivateKey.generate()
    _provider(app, key)
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    number = resident_id()
    await issued_certificate(client, issuer, holder={"name": "冯十二", "id_type": "resident_id", "id_number": number})
    now = int(time.time())
    as_text = {"exp": str(now + 300), "iat": str(now), "nbf": str(now)}[claim]
    token = _id_token(key, number, **{"nbf": now, claim: as_text})
    refused = await client.post("/v1/holder/sessions/external", json={"id_token": token})
    problem = assert_problem(refused, 401)
    assert f"the {claim} claim must be a NumericDate" in problem["detail"]
    accepted = await client.post("/v1/holder/sessions/external", json={"id_token": _id_token(key, number, nbf=now)})
    assert accepted.status_code == 201, accepted.text  # the same token with numbers is accepted


@pytest.mark.parametrize(
    ("overrides", "chinese"),
    [({"aud": "someone-else"}, "aud 声明指向另一受众"), ({"iss": "https://evil.example"}, "iss 声明指向另一签发方")],
    ids=["audience", "issuer"],
)
async def test_a_refused_provider_token_is_explained_in_chinese_without_pyjwts_english(
    app: FastAPI, client: httpx.AsyncClient, overrides: dict[str, Any], chinese: str
) -> None:
    """Before: ``str()`` of PyJWT's error in the detail, "身份令牌无效：Audience doesn't match"."""
    key = Ed25519PrivateKey.generate()
    _provider(app, key)
    token = _id_token(key, resident_id(), **overrides)

    response = await client.post(
        "/v1/holder/sessions/external", json={"id_token": token}, headers={"Accept-Language": "zh-CN"}
    )

    detail = assert_problem(response, 401)["detail"]
    assert detail.startswith("身份令牌无效："), detail
    assert chinese in detail, detail
    assert not re.findall(r"[A-Za-z]{4,}", detail), detail  # "iss", "aud": the claims' names, said as they are


async def test_external_sign_in_is_off_unless_configured(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/holder/sessions/external", json={"id_token": "x" * 40})
    assert response.status_code == 404


async def test_a_provider_whose_keys_cannot_be_fetched_is_503_try_again_not_a_bad_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Before, the holder was told 401 (their token refused) when the provider's key set was out of reach."""

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("provider down", request=request)

    mock_identity_provider(app, down)
    token = _id_token(Ed25519PrivateKey.generate(), resident_id())
    response = await client.post("/v1/holder/sessions/external", json={"id_token": token})
    problem = assert_problem(response, 503, slug="service-unavailable")
    assert "try again" in problem["detail"]
    assert int(response.headers["Retry-After"]) > 0
    home = await client.get("/holder")
    csrf = home.cookies.get("tr_holder_csrf") or client.cookies.get("tr_holder_csrf")
    page = await client.post("/holder/sign-in/external", data={"csrf": csrf, "id_token": token})
    assert page.status_code == 503, page.text[:300]
    assert page.headers["content-type"].startswith("text/html")
    assert "暂时无法联系身份提供方" in page.text
    assert int(page.headers["Retry-After"]) > 0
