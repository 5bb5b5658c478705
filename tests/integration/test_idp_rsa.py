"""Holders signing in with a provider that signs its ID tokens with RSA (RS256, PS256), as most public providers do.

The tokens are made here by hand with ``cryptography`` alone (RFC 7515 compact JWS, RFC 7518 3.3 and 3.5), not with
PyJWT, which the registry verifies with; the provider's JWKS is built by hand too and served through the provider's
transport, as the other identity provider tests serve theirs. Every refusal is a 401 problem, never a 500.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from fastapi import FastAPI

from tests.checks import assert_problem
from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token, resident_id
from tests.integration.holder_support import IDP_AUDIENCE, IDP_ISSUER, mock_identity_provider

ISSUER, AUDIENCE = IDP_ISSUER, IDP_AUDIENCE
SIGN_IN = "/v1/holder/sessions/external"
_ABSENT = object()


@functools.cache
def _rsa(bits: int) -> rsa.RSAPrivateKey:
    """One key per size for the whole run: generating them is the slow part, and nothing here depends on which."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _rsa_jwk(key: rsa.RSAPrivateKey, kid: str, alg: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    jwk: dict[str, Any] = {"kty": "RSA", "kid": kid, "use": "sig", "n": _uint(numbers.n), "e": _uint(numbers.e)}
    return jwk if alg is _ABSENT else {**jwk, "alg": alg}


def _ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    coordinate = {name: _b64(value.to_bytes(32, "big")) for name, value in (("x", numbers.x), ("y", numbers.y))}
    return {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", **coordinate}


def _serve(app: FastAPI, keys: list[dict[str, Any]]) -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == f"{ISSUER}/jwks.json"
        return httpx.Response(200, json={"keys": keys})

    mock_identity_provider(app, serve)


def _claims(number: str) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-1", "iat": now, "exp": now + 300, "id_number": number}


def _signing_input(header: dict[str, Any], claims: dict[str, Any]) -> bytes:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()


def _rsa_signed(key: rsa.RSAPrivateKey, alg: str, kid: str, claims: dict[str, Any]) -> str:
    """RS256: RSASSA-PKCS1-v1_5 with SHA-256; PS256: RSASSA-PSS with SHA-256, MGF1 SHA-256, a 32-byte salt."""
    signing_input = _signing_input({"alg": alg, "kid": kid, "typ": "JWT"}, claims)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    scheme = pss if alg.startswith("PS") else padding.PKCS1v15()
    return f"{signing_input.decode()}.{_b64(key.sign(signing_input, scheme, hashes.SHA256()))}"


def _hand_made(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """alg none (no signature), or HS256 keyed with ``secret``: what a forger makes of a public RSA key."""
    signing_input = _signing_input(header, claims)
    mac = b"" if secret is None else hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{_b64(mac)}"


async def _holder(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str]:
    """A holder with a certificate: (their identity number, the certificate's number)."""
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    number = resident_id(birth="19910303")
    holder = {"name": "冯十二", "id_type": "resident_id", "id_number": number}
    certificate = await issued_certificate(client, issuer, holder=holder)
    return number, str(certificate["number"])


async def _refused(client: httpx.AsyncClient, token: str, number: str) -> str:
    response = await client.post(SIGN_IN, json={"id_token": token})
    detail = str(assert_problem(response, 401, slug="unauthenticated", secret=number)["detail"])
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return detail


@pytest.mark.parametrize(
    ("alg", "published_alg"),
    [("RS256", "RS256"), ("RS256", _ABSENT), ("PS256", "PS256"), ("PS256", _ABSENT)],
    ids=["RS256", "RS256-jwk-without-alg", "PS256", "PS256-jwk-without-alg"],
)
async def test_a_holder_signs_in_with_an_rsa_signed_id_token(
    app: FastAPI, client: httpx.AsyncClient, alg: str, published_alg: Any
) -> None:
    """Before, only EdDSA and ES256 were accepted: a provider signing with RS256 (most do) signed nobody in."""
    key = _rsa(2048)
    _serve(app, [_rsa_jwk(key, "idp-rsa", published_alg)])
    number, certificate = await _holder(app, client)

    session = await client.post(SIGN_IN, json={"id_token": _rsa_signed(key, alg, "idp-rsa", _claims(number))})

    assert session.status_code == 201, session.text
    body = session.json()
    assert body["token_type"] == "Bearer"
    assert body["holder_name"] == "冯十二"
    assert body["certificates_of"] is None  # through the provider: every body's certificates
    assert number not in session.text
    listed = await client.get("/v1/holder/certificates", headers=bearer(body["access_token"]))
    assert listed.status_code == 200, listed.text
    assert [(c["number"], c["result"]) for c in listed.json()] == [(certificate, "valid")]


async def test_an_rsa_key_shorter_than_2048_bits_is_refused_and_the_problem_says_why(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    short = _rsa(1024)
    _serve(app, [_rsa_jwk(short, "idp-short", "RS256"), _rsa_jwk(_rsa(2048), "idp-rsa", "RS256")])
    number, _ = await _holder(app, client)

    detail = await _refused(client, _rsa_signed(short, "RS256", "idp-short", _claims(number)), number)

    assert "RSA key of 1024 bits" in detail, detail
    assert "2048" in detail, detail
    token = _rsa_signed(short, "RS256", "idp-short", _claims(number))
    zh = await client.post(SIGN_IN, json={"id_token": token}, headers={"Accept-Language": "zh-CN"})
    assert "1024 位" in assert_problem(zh, 401)["detail"]
    long_signed = _rsa_signed(_rsa(2048), "RS256", "idp-rsa", _claims(number))
    accepted = await client.post(SIGN_IN, json={"id_token": long_signed})
    assert accepted.status_code == 201, accepted.text  # the provider's long key still signs in


@pytest.mark.parametrize("published_alg", ["RS256", _ABSENT], ids=["jwk-alg-RS256", "jwk-without-alg"])
async def test_hs256_keyed_with_the_rsa_public_key_and_alg_none_are_refused(
    app: FastAPI, client: httpx.AsyncClient, published_alg: Any
) -> None:
    """The classic algorithm confusion: the provider's public key (PEM, DER or its JWK) used as an HMAC secret."""
    key = _rsa(2048)
    jwk = _rsa_jwk(key, "idp-rsa", published_alg)
    _serve(app, [jwk])
    number, _ = await _holder(app, client)
    claims = _claims(number)
    public = key.public_key()
    secrets = [
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        json.dumps(jwk).encode(),
    ]
    headers = [{"alg": alg, "kid": "idp-rsa", "typ": "JWT"} for alg in ("HS256", "HS512")]
    tokens = [_hand_made(header, claims, secret) for secret in secrets for header in headers]
    tokens += [_hand_made({"alg": alg, "kid": "idp-rsa"}, claims, None) for alg in ("none", "None", "NONE")]
    for token in tokens:
        detail = await _refused(client, token, number)
        assert "algorithm" in detail, detail


async def test_an_rsa_algorithm_over_an_ec_key_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The provider's key is P-256 (its JWK stating no alg, or ES256): a header saying RS256 or PS256 is not checked
    against it, whatever the token is signed with."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    _serve(app, [_ec_jwk(ec_key, "idp-ec"), {**_ec_jwk(ec_key, "idp-ec-es256"), "alg": "ES256"}])
    number, _ = await _holder(app, client)
    for kid in ("idp-ec", "idp-ec-es256"):
        for alg in ("RS256", "PS256"):
            detail = await _refused(client, _rsa_signed(_rsa(2048), alg, kid, _claims(number)), number)
            assert "algorithm" in detail, detail


@pytest.mark.parametrize(("published_alg", "alg"), [("RS256", "PS256"), ("PS256", "RS256")])
async def test_an_rsa_key_checks_only_the_algorithm_its_jwk_states(
    app: FastAPI, client: httpx.AsyncClient, published_alg: str, alg: str
) -> None:
    """The token is truly signed by the provider's key, but in the other RSA scheme than the one its JWK states."""
    key = _rsa(2048)
    _serve(app, [_rsa_jwk(key, "idp-rsa", published_alg)])
    number, _ = await _holder(app, client)

    detail = await _refused(client, _rsa_signed(key, alg, "idp-rsa", _claims(number)), number)

    assert "algorithm" in detail, detail
    own = _rsa_signed(key, published_alg, "idp-rsa", _claims(number))
    accepted = await client.post(SIGN_IN, json={"id_token": own})
    assert accepted.status_code == 201, accepted.text  # in its own algorithm, the same key signs in


async def test_a_key_published_with_its_private_half_is_refused_not_a_500(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A provider that publishes its RSA key's private members (``d``, ``p``, ``q``, ...) lets anyone sign as it.
    Before, such a key was read as an RSA private key and PyJWT, verifying with it, raised AttributeError: a 500."""
    key = _rsa(2048)
    private = key.private_numbers()
    members = {
        "d": private.d,
        "p": private.p,
        "q": private.q,
        "dp": private.dmp1,
        "dq": private.dmq1,
        "qi": private.iqmp,
    }
    jwk = {**_rsa_jwk(key, "idp-rsa", "RS256"), **{name: _uint(value) for name, value in members.items()}}
    _serve(app, [jwk])
    number, _ = await _holder(app, client)

    detail = await _refused(client, _rsa_signed(key, "RS256", "idp-rsa", _claims(number)), number)

    assert "private half" in detail, detail


async def test_a_token_signed_by_another_rsa_key_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    _serve(app, [_rsa_jwk(_rsa(2048), "idp-rsa", "RS256")])
    number, _ = await _holder(app, client)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    detail = await _refused(client, _rsa_signed(other, "RS256", "idp-rsa", _claims(number)), number)
    assert "signature" in detail, detail


def _es256_signed(key: ec.EllipticCurvePrivateKey, kid: str, claims: dict[str, Any]) -> str:
    """ES256 (RFC 7518 3.4): ECDSA over P-256 with SHA-256, the signature as r and s of 32 bytes each."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    signing_input = _signing_input({"alg": "ES256", "kid": kid, "typ": "JWT"}, claims)
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return f"{signing_input.decode()}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.mark.parametrize("rsa_first", [True, False], ids=["rsa-then-ec", "ec-then-rsa"])
async def test_keys_of_two_types_sharing_a_kid_each_check_their_own_algorithm(
    app: FastAPI, client: httpx.AsyncClient, rsa_first: bool
) -> None:
    """RFC 7517 4.5 lets an RSA and an EC key share a kid. Before, the key set kept only the one published last: a
    token signed with the other (RS256 or ES256, each in its own key's algorithm) was refused."""
    rsa_key, ec_key = _rsa(2048), ec.generate_private_key(ec.SECP256R1())
    pair = [_rsa_jwk(rsa_key, "idp-both", "RS256"), _ec_jwk(ec_key, "idp-both")]
    _serve(app, pair if rsa_first else pair[::-1])
    number, _ = await _holder(app, client)

    for token in (
        _rsa_signed(rsa_key, "RS256", "idp-both", _claims(number)),
        _es256_signed(ec_key, "idp-both", _claims(number)),
    ):
        session = await client.post(SIGN_IN, json={"id_token": token})
        assert session.status_code == 201, session.text
    detail = await _refused(client, _rsa_signed(rsa_key, "PS256", "idp-both", _claims(number)), number)
    assert "algorithm" in detail, detail  # neither key is published for PS256


def _odd_jwk(key: rsa.RSAPrivateKey, **numbers: int) -> dict[str, Any]:
    return {**_rsa_jwk(key, "idp-odd", "RS256"), **{name: _uint(value) for name, value in numbers.items()}}


@pytest.mark.parametrize(
    "numbers",
    [
        {"n": (1 << 16383) | (0xA5 << 4000) | 1},
        {"n": (1 << 8192) | 1},
        {"e": (1 << 2040) + 1},
        {"e": (1 << 31) + 1},
        {"n": _rsa(2048).public_key().public_numbers().n + 1},
    ],
    ids=["16384-bit", "8193-bit", "2041-bit-exponent", "exponent-over-2^31", "even-modulus"],
)
async def test_an_rsa_key_too_long_or_with_an_odd_exponent_is_refused_before_any_signature_is_checked(
    app: FastAPI, client: httpx.AsyncClient, numbers: dict[str, int]
) -> None:
    """Before, such a key was used: each sign-in paid for a full modular exponentiation with a 2048-bit exponent, or
    checked the signature against a 16384-bit modulus no provider uses; now the problem says what is accepted."""
    key = _rsa(2048)
    _serve(app, [_odd_jwk(key, **numbers)])
    number, _ = await _holder(app, client)

    detail = await _refused(client, _rsa_signed(key, "RS256", "idp-odd", _claims(number)), number)

    assert "at most 8192 bits" in detail, detail
    zh = await client.post(
        SIGN_IN,
        json={"id_token": _rsa_signed(key, "RS256", "idp-odd", _claims(number))},
        headers={"Accept-Language": "zh-CN"},
    )
    assert "8192 位" in assert_problem(zh, 401)["detail"]


async def test_a_modulus_written_with_a_leading_zero_byte_is_read_at_its_length(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A JWK's ``n`` with a zero byte in front (some providers encode it signed) is the same 2048-bit key."""
    key = _rsa(2048)
    modulus = key.public_key().public_numbers().n
    _serve(app, [{**_rsa_jwk(key, "idp-rsa", "RS256"), "n": _b64(b"\0" + modulus.to_bytes(256, "big"))}])
    number, _ = await _holder(app, client)

    session = await client.post(SIGN_IN, json={"id_token": _rsa_signed(key, "RS256", "idp-rsa", _claims(number))})

    assert session.status_code == 201, session.text


def _jwk_for(kid: str, **members: Any) -> dict[str, Any]:
    """The provider's one key, published under ``kid`` with ``members`` changed, e.g. for encryption only."""
    return {**_rsa_jwk(_rsa(2048), kid, "RS256"), **members}


_NO_USABLE_KEY = {
    "use-enc": ({"use": "enc"}, "published for encryption only"),
    "key_ops-without-verify": ({"key_ops": ["encrypt", "wrapKey"]}, '"key_ops" leave out "verify"'),
    "alg-a-list": ({"alg": ["RS256"]}, '"alg" is not one algorithm name'),
    "alg-lower-case": ({"alg": "rs256"}, '"alg" is not one algorithm name'),
    "kty-lower-case": ({"kty": "rsa"}, '"kty" is not a key type'),
    "exponent-1": ({"e": _uint(1)}, "no valid public key"),
    "exponent-2": ({"e": _uint(2)}, "no valid public key"),
}


@pytest.mark.parametrize(("members", "why"), _NO_USABLE_KEY.values(), ids=_NO_USABLE_KEY.keys())
async def test_a_key_set_read_but_with_no_usable_key_for_the_kid_is_a_401_saying_why_not_a_503(
    app: FastAPI, client: httpx.AsyncClient, members: dict[str, Any], why: str
) -> None:
    """Before, a key set fetched whole but holding no usable key was taken for an unreachable one: every sign-in was
    answered 503 "cannot be fetched; try again shortly" with Retry-After, which no retry would ever resolve."""
    key = _rsa(2048)
    _serve(app, [_jwk_for("idp-rsa", **members)])
    number, _ = await _holder(app, client)

    for _attempt in range(2):  # the second at once: the set was read, nothing remembered as a failure
        token = _rsa_signed(key, "RS256", "idp-rsa", _claims(number))
        response = await client.post(SIGN_IN, json={"id_token": token})
        assert "Retry-After" not in response.headers
        detail = str(assert_problem(response, 401, slug="unauthenticated", secret=number)["detail"])
        assert "not published by the provider as a usable signing key" in detail, detail
        assert why in detail, detail
    token = _rsa_signed(key, "RS256", "idp-rsa", _claims(number))
    zh = await client.post(SIGN_IN, json={"id_token": token}, headers={"Accept-Language": "zh-CN"})
    assert "没有把身份令牌的密钥作为可用的签名密钥公布" in assert_problem(zh, 401)["detail"]


async def test_a_kid_under_which_a_read_key_set_publishes_nothing_is_a_401_and_a_down_provider_still_a_503(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """An empty key set, or one whose only key is unusable under another kid: nothing under the token's kid."""
    number, _ = await _holder(app, client)
    for keys in ([], [_jwk_for("idp-other", use="enc")]):
        _serve(app, keys)
        detail = await _refused(client, _rsa_signed(_rsa(2048), "RS256", "idp-rsa", _claims(number)), number)
        assert detail == "the identity token's key is not published by the provider", detail

    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="internal error")

    mock_identity_provider(app, failing)
    for _attempt in range(2):
        token = _rsa_signed(_rsa(2048), "RS256", "idp-rsa", _claims(number))
        response = await client.post(SIGN_IN, json={"id_token": token})
        assert "try again" in assert_problem(response, 503, slug="service-unavailable")["detail"]
        assert int(response.headers["Retry-After"]) > 0
