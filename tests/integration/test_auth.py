"""Access tokens, authorisation and the token endpoint.

Forged tokens are built from a real token's claims and signed with the registry's own key, so that each test changes
exactly one thing; a control test shows that the forging itself is sound (an unchanged forgery is accepted).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from sqlalchemy import text

from registry.auth.scopes import Role
from registry.certificates import numbering
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import transaction
from registry.issuers import service as issuers
from registry.keys import service as keys
from registry.keys.models import KeyUse
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_client,
    create_issuer,
    issued_certificate,
    issuer_body,
    token_for,
)

PROBLEM_JSON = "application/problem+json"
ISSUER_CODE = "BJ-AI-COMMITTEE"
ACCESS_TOKEN_TYP = "at+jwt"
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})
_COUNT_STATEMENTS = {
    "certificates": "SELECT count(*) FROM certificates",
    "holders": "SELECT count(*) FROM holders",
    "issuers": "SELECT count(*) FROM issuers",
    "api_clients": "SELECT count(*) FROM api_clients",
    "audit_log": "SELECT count(*) FROM audit_log",
    "catalogue_entries": "SELECT count(*) FROM catalogue_entries",
}


# --- helpers -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class World:
    admin: str
    issuer: str
    issuer_client_id: str
    issuer_client_secret: str


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def row_counts(app: FastAPI) -> dict[str, int]:
    async with transaction(app.state.sessions) as session:
        return {
            table: int((await session.execute(text(statement))).scalar_one())
            for table, statement in _COUNT_STATEMENTS.items()
        }


async def registry_key(app: FastAPI) -> tuple[str, Ed25519PrivateKey]:
    """The registry's active access-token key: its kid and private key."""
    context: RegistryContext = app.state.context
    async with transaction(app.state.sessions) as session:
        key = await keys.registry_token_key(session, context.box)
    return key.kid, context.keyring.private_key(key)


async def certificate_key(app: FastAPI, issuer_code: str) -> tuple[str, Ed25519PrivateKey]:
    """An evaluation body's active certificate-signing key: its kid and private key."""
    context: RegistryContext = app.state.context
    async with transaction(app.state.sessions) as session:
        issuer = await issuers.get_by_code(session, issuer_code)
        assert issuer is not None
        assert issuer.id is not None
        key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
    assert key is not None
    return key.kid, context.keyring.private_key(key)


def fresh_claims(token: str, **changes: Any) -> dict[str, Any]:
    """A real token's claims with new iat/nbf/exp/jti, then ``changes`` (a value of None removes the claim)."""
    now = int(time.time())
    claims = {**unverified_claims(token), "iat": now, "nbf": now, "exp": now + 600, "jti": str(uuid.uuid4())}
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def sign(claims: dict[str, Any], key: Ed25519PrivateKey, **header: Any) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers=header)


async def forge(app: FastAPI, token: str, *, header: dict[str, Any] | None = None, **changes: Any) -> str:
    kid, key = await registry_key(app)
    return sign(fresh_claims(token, **changes), key, **{"kid": kid, "typ": ACCESS_TOKEN_TYP, **(header or {})})


def assert_problem(response: httpx.Response, status: int, *, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    for member in ("type", "title", "status", "detail"):
        assert body.get(member) not in (None, ""), f"problem member {member!r} missing: {body}"
    assert body["status"] == status
    if slug is not None:
        assert body["type"].endswith("/" + slug), body["type"]
    return body


async def assert_refused(app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Try to issue a certificate with these credentials: 401, a Bearer challenge, and nothing written."""
    before = await row_counts(app)
    response = await client.post("/v1/certificates", json=certificate_body(), headers=headers)
    assert await row_counts(app) == before, "a request with bad credentials wrote to the database"
    problem = assert_problem(response, 401)
    assert response.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), response.headers
    return problem


async def assert_token_refused(app: FastAPI, client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    return await assert_refused(app, client, bearer(token))


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient) -> World:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    client_id, client_secret = await create_client(app, role=Role.issuer, issuer_code=ISSUER_CODE)
    issuer = await token_for(client, client_id, client_secret)
    return World(admin=admin, issuer=issuer, issuer_client_id=client_id, issuer_client_secret=client_secret)


# --- access tokens -------------------------------------------------------------------------------------------------


async def test_a_token_forged_with_the_registry_key_and_unchanged_claims_is_accepted(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """Control: the forging helpers produce a token the registry accepts, so every refusal below is for its one flaw."""
    token = await forge(app, world.issuer)
    response = await client.post("/v1/certificates", json=certificate_body(), headers=bearer(token))
    assert response.status_code == 201, response.text


async def test_a_request_without_a_token_is_refused_with_a_bearer_challenge(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    await assert_refused(app, client, {})


async def test_a_garbage_token_is_refused(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    await assert_token_refused(app, client, "not-a-jwt-at-all")


async def test_basic_credentials_on_an_api_endpoint_are_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    basic = base64.b64encode(f"{world.issuer_client_id}:{world.issuer_client_secret}".encode()).decode()
    await assert_refused(app, client, {"Authorization": f"Basic {basic}"})


async def test_an_expired_token_is_refused(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    now = int(time.time())
    token = await forge(app, world.issuer, iat=now - 3600, nbf=now - 3600, exp=now - 600)
    problem = await assert_token_refused(app, client, token)
    assert "expired" in problem["detail"]


async def test_a_token_without_an_expiry_is_refused(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    await assert_token_refused(app, client, await forge(app, world.issuer, exp=None))


async def test_a_token_signed_by_another_key_under_the_registrys_kid_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    kid, _ = await registry_key(app)
    token = sign(fresh_claims(world.issuer), Ed25519PrivateKey.generate(), kid=kid, typ=ACCESS_TOKEN_TYP)
    await assert_token_refused(app, client, token)


async def test_an_unsigned_alg_none_token_is_refused(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    kid, _ = await registry_key(app)
    header = {"alg": "none", "typ": ACCESS_TOKEN_TYP, "kid": kid}
    token = f"{b64url_json(header)}.{b64url_json(fresh_claims(world.issuer))}."
    await assert_token_refused(app, client, token)


@pytest.mark.parametrize("secret_form", ["raw", "pem", "jwk-x"])
async def test_an_hs256_token_keyed_with_the_registrys_public_key_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World, secret_form: str
) -> None:
    kid, private = await registry_key(app)
    public = private.public_key()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    secret = {
        "raw": raw,
        "pem": public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        "jwk-x": b64url(raw).encode(),
    }[secret_form]
    signing_input = f"{b64url_json({'alg': 'HS256', 'typ': ACCESS_TOKEN_TYP, 'kid': kid})}."
    signing_input += b64url_json(fresh_claims(world.issuer))
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    await assert_token_refused(app, client, f"{signing_input}.{b64url(signature)}")


async def test_a_token_for_another_audience_is_refused(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    await assert_token_refused(app, client, await forge(app, world.issuer, aud="https://another-service.example"))


async def test_a_token_from_another_issuer_is_refused(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    await assert_token_refused(app, client, await forge(app, world.issuer, iss="https://evil.example"))


async def test_a_token_not_yet_valid_is_refused(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    now = int(time.time())
    await assert_token_refused(app, client, await forge(app, world.issuer, nbf=now + 3600, exp=now + 7200))


@pytest.mark.parametrize("typ", ["JWT", None, "tr-cert-sig+jws"], ids=["JWT", "absent", "certificate-signature"])
async def test_a_token_whose_typ_is_not_at_jwt_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World, typ: str | None
) -> None:
    kid, key = await registry_key(app)
    header: dict[str, Any] = {"kid": kid, "typ": typ}
    if typ is None:
        # PyJWT writes typ "JWT" unless told otherwise; build the header without typ by hand.
        signing_input = f"{b64url_json({'alg': 'EdDSA', 'kid': kid})}.{b64url_json(fresh_claims(world.issuer))}"
        token = f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"
    else:
        token = sign(fresh_claims(world.issuer), key, **header)
    assert jwt.get_unverified_header(token).get("typ") == typ
    await assert_token_refused(app, client, token)


@pytest.mark.parametrize(
    "extra_header",
    [
        {"jku": "https://evil.example/jwks.json"},
        {"x5u": "https://evil.example/cert.pem"},
        {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\x00" * 32)}},
    ],
    ids=["jku", "x5u", "jwk"],
)
async def test_a_token_carrying_key_location_headers_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World, extra_header: dict[str, Any]
) -> None:
    await assert_token_refused(app, client, await forge(app, world.issuer, header=extra_header))


async def test_a_token_with_an_unknown_kid_is_refused(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    token = await forge(app, world.issuer, header={"kid": "registry-20260101-deadbeef"})
    await assert_token_refused(app, client, token)


async def test_a_token_without_a_kid_is_refused(app: FastAPI, client: httpx.AsyncClient, world: World) -> None:
    _, key = await registry_key(app)
    await assert_token_refused(app, client, sign(fresh_claims(world.issuer), key, typ=ACCESS_TOKEN_TYP))


async def test_a_certificate_signature_presented_as_a_bearer_token_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    certificate = await issued_certificate(client, world.issuer)
    signature: str = certificate["signature"]
    assert jwt.get_unverified_header(signature)["typ"] == "tr-cert-sig+jws"
    await assert_token_refused(app, client, signature)


async def test_an_access_token_minted_with_an_evaluation_bodys_certificate_key_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    kid, key = await certificate_key(app, ISSUER_CODE)
    token = sign(fresh_claims(world.issuer), key, kid=kid, typ=ACCESS_TOKEN_TYP)
    await assert_token_refused(app, client, token)


async def test_a_token_of_a_deactivated_client_is_refused_before_it_expires(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    async with transaction(app.state.sessions) as session:
        await session.execute(
            text("UPDATE api_clients SET active = :active WHERE client_id = :client_id"),
            {"active": False, "client_id": world.issuer_client_id},
        )
    await assert_token_refused(app, client, world.issuer)


async def test_a_token_naming_another_client_as_subject_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    await assert_token_refused(app, client, await forge(app, world.issuer, sub="trc_00000000000000000000"))


async def test_a_token_claiming_scopes_its_client_lacks_gains_nothing(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """Scopes are intersected with what the client holds today: an inflated scope claim does not open admin routes."""
    token = await forge(app, world.issuer, scope="issuers:write clients:write catalogue:write", role="admin")
    response = await client.post("/v1/clients", json={"role": "admin", "name": "backdoor"}, headers=bearer(token))
    assert_problem(response, 403)


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


@pytest.mark.parametrize("scope", ["catalogue:write", "certificates:read issuers:write", "everything"])
async def test_token_request_for_a_scope_the_client_lacks_is_a_bad_request(
    app: FastAPI, client: httpx.AsyncClient, world: World, scope: str
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": world.issuer_client_id,
        "client_secret": world.issuer_client_secret,
        "scope": scope,
    }
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
    form = {
        "grant_type": "client_credentials",
        "client_id": world.issuer_client_id,
        "client_secret": world.issuer_client_secret,
    }
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
        assert not _PRIVATE_JWK_MEMBERS & jwk.keys(), f"private member in {jwk}"
        assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
        assert len(base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))) == 32
