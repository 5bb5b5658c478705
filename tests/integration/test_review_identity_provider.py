"""A review of the identity provider's token checks (RFC 7519, RFC 8725, OpenID Connect Core 3.1.3.7), through the
holder sign-in endpoint with a fake provider: its own key, its own issuer, a holder with a certificate — so only the
flaw under test can be why a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from tests.checks import assert_problem
from tests.factories import admin_token, create_issuer, issued_certificate, issuer_token, resident_id
from tests.integration.holder_support import IDP_AUDIENCE, IDP_ISSUER, mock_identity_provider

ISSUER, AUDIENCE = IDP_ISSUER, IDP_AUDIENCE
OTHER_PARTY = "another-relying-party"
SIGN_IN = "/v1/holder/sessions/external"


class FakeProvider:
    """The provider's key, its JWKS (counting how often it is fetched) and tokens signed as it would sign them."""

    def __init__(self, app: FastAPI) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.fetches = 0
        jwk: dict[str, Any] = jwt.algorithms.OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update({"kid": "idp-1", "alg": "EdDSA", "use": "sig"})
        self.jwk = jwk

        def serve(request: httpx.Request) -> httpx.Response:
            self.fetches += 1
            return httpx.Response(200, json={"keys": [jwk]})

        mock_identity_provider(app, serve)

    def token(self, number: str, *, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-1", "iat": now, "exp": now + 300, "id_number": number}
        claims.update(overrides)
        for name in [name for name, value in claims.items() if value is _ABSENT]:
            del claims[name]
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": "idp-1", **(headers or {})})

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


_ABSENT = object()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_made(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A compact JWS PyJWT would refuse to make: alg none, or HS256 keyed with the provider's public key."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    return signing_input + "." + _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


async def _holder(app: FastAPI, client: httpx.AsyncClient) -> str:
    """A holder with a certificate: their number signs in with a sound token."""
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    number = resident_id(birth="19880808")
    await issued_certificate(client, issuer, holder={"name": "冯十二", "id_type": "resident_id", "id_number": number})
    return number


async def _refused(client: httpx.AsyncClient, token: str, number: str, *, language: str = "en") -> str:
    response = await client.post(SIGN_IN, json={"id_token": token}, headers={"Accept-Language": language})
    detail = str(assert_problem(response, 401, slug="unauthenticated", secret=number)["detail"])
    assert number not in response.text
    assert number[:-4] not in response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return detail


async def _accepted(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post(SIGN_IN, json={"id_token": token})
    assert response.status_code == 201, response.text


async def test_a_token_for_several_audiences_needs_azp_to_be_this_registry(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """OIDC Core 3.1.3.7: aud must contain our client id, and a token for several audiences names in azp the party it
    was issued to. Before, PyJWT's "any of the list is ours" let a token issued to another relying party (which also
    listed us) sign the holder in here."""
    provider = FakeProvider(app)
    number = await _holder(app, client)
    cases: tuple[dict[str, Any], ...] = (
        {"aud": [OTHER_PARTY, AUDIENCE]},  # several audiences, no azp: whose is it?
        {"aud": [OTHER_PARTY, AUDIENCE], "azp": OTHER_PARTY},  # issued to the other party
        {"aud": AUDIENCE, "azp": OTHER_PARTY},  # azp, when present, must be us
        {"aud": [OTHER_PARTY]},
        {"aud": []},
    )
    for claims in cases:
        detail = await _refused(client, provider.token(number, **claims), number)
        assert "aud" in detail or "azp" in detail, (claims, detail)
    await _accepted(client, provider.token(number, aud=[OTHER_PARTY, AUDIENCE], azp=AUDIENCE))
    await _accepted(client, provider.token(number, aud=[AUDIENCE]))
    await _accepted(client, provider.token(number, aud=AUDIENCE, azp=AUDIENCE))


@pytest.mark.parametrize(
    "typ", ["at+jwt", "application/at+JWT", "logout+jwt", "secevent+jwt", "JWE", "", 7, None], ids=repr
)
async def test_a_token_of_another_type_is_refused(app: FastAPI, client: httpx.AsyncClient, typ: Any) -> None:
    """RFC 8725 3.11: an access token (RFC 9068 at+jwt) or a back-channel logout token (logout+jwt) from the same
    provider, for the same audience, carrying the same claims, is not an ID token and signs no one in."""
    provider = FakeProvider(app)
    number = await _holder(app, client)
    token = _hand_typed(provider, number, typ)  # by hand: PyJWT leaves out a typ of "" or null
    detail = await _refused(client, token, number)
    assert "typ" in detail, detail


def _hand_typed(provider: FakeProvider, number: str, typ: Any) -> str:
    now = int(time.time())
    header = {"alg": "EdDSA", "kid": "idp-1", "typ": typ}
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "id_number": number}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return signing_input + "." + _b64(provider.key.sign(signing_input.encode()))


async def test_an_id_token_typed_as_jwt_or_not_typed_is_accepted(app: FastAPI, client: httpx.AsyncClient) -> None:
    """RFC 7515 4.1.9: "JWT", any case, with or without "application/"; or no typ at all (OIDC sets none)."""
    provider = FakeProvider(app)
    number = await _holder(app, client)
    for typ in ("JWT", "jwt", "application/jwt", "Application/JWT"):
        await _accepted(client, provider.token(number, headers={"typ": typ}))
    await _accepted(client, provider.token(number, headers={"typ": None}))  # PyJWT then leaves typ out


async def test_a_logout_token_without_typ_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    """OIDC Back-Channel Logout 2.4: a logout token carries ``events``; one whose provider omits typ is still not an
    ID token."""
    provider = FakeProvider(app)
    number = await _holder(app, client)
    events: dict[str, Any] = {"http://schemas.openid.net/event/backchannel-logout": {}}
    token = provider.token(number, headers={"typ": None}, events=events, jti="l-1")
    await _refused(client, token, number)


@pytest.mark.parametrize(
    ("claims", "word"),
    [
        ({"nbf": 3600}, "nbf"),
        ({"iat": 3600}, "iat"),
        ({"iat": 10**12}, "iat"),
        ({"exp": _ABSENT}, "exp"),
        ({"iat": _ABSENT}, "iat"),
        ({"exp": -60}, "exp"),
    ],
    ids=["nbf-in-an-hour", "iat-in-an-hour", "iat-in-year-33658", "no-exp", "no-iat", "expired"],
)
async def test_time_claims_are_enforced(
    app: FastAPI, client: httpx.AsyncClient, claims: dict[str, Any], word: str
) -> None:
    provider = FakeProvider(app)
    number = await _holder(app, client)
    now = int(time.time())
    relative: dict[str, Any] = {
        name: (now + value if isinstance(value, int) and value < 10**11 else value) for name, value in claims.items()
    }
    detail = await _refused(client, provider.token(number, **relative), number)
    assert word in detail, detail


async def test_nbf_and_iat_within_the_leeway_are_accepted(app: FastAPI, client: httpx.AsyncClient) -> None:
    provider = FakeProvider(app)
    number = await _holder(app, client)
    now = int(time.time())
    await _accepted(client, provider.token(number, nbf=now + 2, iat=now + 2))


async def test_alg_none_and_hs256_keyed_with_the_public_key_are_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    provider = FakeProvider(app)
    number = await _holder(app, client)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "id_number": number}
    x = base64.urlsafe_b64decode(provider.jwk["x"] + "==")
    tokens = [
        _hand_made({"alg": "none", "kid": "idp-1"}, claims, None),
        _hand_made({"alg": "None", "kid": "idp-1"}, claims, None),
        _hand_made({"alg": "HS256", "kid": "idp-1", "typ": "JWT"}, claims, provider.public_pem()),
        _hand_made({"alg": "HS256", "kid": "idp-1", "typ": "JWT"}, claims, x),
        _hand_made({"alg": "HS256", "kid": "idp-1"}, claims, json.dumps(provider.jwk).encode()),
    ]
    for token in tokens:
        detail = await _refused(client, token, number)
        assert "alg" in detail, detail


async def test_an_algorithm_other_than_the_keys_own_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The provider's key is Ed25519: a header saying ES256 is not verified with it as if it were a P-256 key."""
    provider = FakeProvider(app)
    number = await _holder(app, client)
    sound = provider.token(number)
    header = json.loads(base64.urlsafe_b64decode(sound.split(".")[0] + "=="))
    header["alg"] = "ES256"
    forged = _b64(json.dumps(header).encode()) + "." + sound.split(".", 1)[1]
    await _refused(client, forged, number)


async def test_a_kid_the_provider_does_not_publish_is_refused_without_a_fetch_per_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    provider = FakeProvider(app)
    number = await _holder(app, client)
    await _accepted(client, provider.token(number))
    for made_up in ("idp-2", "../idp-1", "idp-1 ", ""):
        token = jwt.encode(
            {
                "iss": ISSUER,
                "aud": AUDIENCE,
                "iat": int(time.time()),
                "exp": int(time.time()) + 300,
                "id_number": number,
            },
            provider.key,
            algorithm="EdDSA",
            headers={"kid": made_up},
        )
        await _refused(client, token, number)
    assert provider.fetches <= 2  # the first fetch, and at most one early re-fetch for an unknown kid


@pytest.mark.parametrize(
    "value",
    ["list", "object", "null", "true"],
)
async def test_the_identity_number_claim_must_be_a_string(app: FastAPI, client: httpx.AsyncClient, value: str) -> None:
    """Before, ``str()`` of whatever the claim held was normalised: ``["…"]`` failed by luck, a JSON integer passed."""
    provider = FakeProvider(app)
    number = await _holder(app, client)
    shaped: Any = {
        "list": [number],
        "object": {"number": number},
        "null": None,
        "true": True,
    }[value]
    await _refused(client, provider.token(number, id_number=shaped), number)


async def test_an_integer_identity_number_is_refused_even_when_its_digits_are_the_holders(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    provider = FakeProvider(app)
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    number = next(n for n in (resident_id(birth="19900101", sequence=s) for s in range(100, 120)) if n.isdigit())
    await issued_certificate(client, issuer, holder={"name": "冯十二", "id_type": "resident_id", "id_number": number})
    await _refused(client, provider.token(number, id_number=int(number)), number)
    await _accepted(client, provider.token(number))


async def test_refusals_are_said_in_chinese_and_do_not_name_the_check_beyond_the_claim(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    provider = FakeProvider(app)
    number = await _holder(app, client)
    for token in (
        provider.token(number, aud=[OTHER_PARTY, AUDIENCE]),
        provider.token(number, headers={"typ": "at+jwt"}),
        provider.token(number, nbf=int(time.time()) + 3600),
    ):
        detail = await _refused(client, token, number, language="zh-CN")
        assert detail.startswith("身份令牌无效："), detail
        assert not re.findall(r"[A-Za-z]{4,}", detail), detail
