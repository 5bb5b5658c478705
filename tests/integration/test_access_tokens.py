"""Access tokens: each forged token is built from a real token's claims and signed with the registry's own key, so
that each test changes exactly one thing; a control test shows that the forging itself is sound (an unchanged forgery
is accepted)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from sqlalchemy import text

from registry.db import transaction
from tests.checks import assert_problem
from tests.factories import (
    bearer,
    certificate_body,
    issued_certificate,
)
from tests.integration.auth_support import (
    ACCESS_TOKEN_TYP,
    ISSUER_CODE,
    World,
    assert_refused,
    assert_token_refused,
    b64url,
    b64url_json,
    certificate_key,
    forge,
    fresh_claims,
    make_world,
    registry_key,
    sign,
)


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient) -> World:
    return await make_world(app, client)


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


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
async def test_a_time_claim_written_as_numeric_text_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World, claim: str
) -> None:
    """RFC 7519: a NumericDate is a JSON number. PyJWT alone takes ``"exp": "1767225600"`` (it calls int() on it)."""
    now = int(time.time())
    as_text: dict[str, Any] = {claim: str({"exp": now + 600, "iat": now, "nbf": now}[claim])}
    problem = await assert_token_refused(app, client, await forge(app, world.issuer, **as_text))
    assert problem["detail"].startswith("the access token is not valid"), problem
    assert f"the {claim} claim must be a NumericDate" in problem["detail"]


@pytest.mark.parametrize(("claim", "value"), [("nbf", True), ("iat", [0]), ("exp", 1e400)], ids=str)
async def test_a_time_claim_that_is_not_a_finite_number_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World, claim: str, value: object
) -> None:
    """``true`` would count as 1 and ``1e400`` as infinity; neither is a NumericDate."""
    kid, key = await registry_key(app)
    payload = b64url(json.dumps(fresh_claims(world.issuer, **{claim: value})).encode())  # writes 1e400 as Infinity
    signing_input = f"{b64url_json({'alg': 'EdDSA', 'typ': ACCESS_TOKEN_TYP, 'kid': kid})}.{payload}"
    token = f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"
    problem = await assert_token_refused(app, client, token)
    assert problem["detail"].startswith("the access token is not valid"), problem


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
