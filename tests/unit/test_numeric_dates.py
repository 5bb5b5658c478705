"""Time claims are NumericDates (JSON numbers) in every token the registry checks; here the peer protocol's service
tokens and statements, which need no database (access and identity-provider tokens: the integration tests)."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.auth.numeric_dates import is_numeric_date, require_numeric_dates
from registry.db import utcnow
from registry.errors import ProtocolError
from registry.federation import protocol

KEY = Ed25519PrivateKey.generate()
PUBLIC = jwt.PyJWK.from_dict(
    {"kty": "OKP", "crv": "Ed25519", "x": jwt.utils.base64url_encode(KEY.public_key().public_bytes_raw()).decode()}
)


def _signed(typ: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, KEY, algorithm="EdDSA", headers={"kid": "k1", "typ": typ})


def _service_claims(**changes: Any) -> dict[str, Any]:
    now = int(utcnow().timestamp())
    claims = {
        "iss": "https://tj.example",
        "region": "TJ",
        "sub": "node:TJ",
        "aud": protocol.node_audience("BJ"),
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    return {**claims, **changes}


@pytest.mark.parametrize(
    "value", [0, 1767225600, 1767225600.5, -1, 10**30], ids=["zero", "int", "fraction", "negative", "huge"]
)
def test_json_numbers_are_numeric_dates(value: object) -> None:
    assert is_numeric_date(value)


@pytest.mark.parametrize("value", ["1767225600", True, False, None, [1], float("inf"), float("nan")], ids=repr)
def test_text_booleans_and_non_finite_values_are_not(value: object) -> None:
    assert not is_numeric_date(value)
    with pytest.raises(jwt.InvalidTokenError, match="exp claim must be a NumericDate"):
        require_numeric_dates({"exp": value})


def test_a_service_token_with_numbers_checks_out() -> None:
    token = _signed(protocol.SERVICE_TOKEN_TYPE, _service_claims())
    assert protocol.check_service_token(token, PUBLIC, own_region="BJ", caller_region="TJ")["sub"] == "node:TJ"


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_a_service_token_with_a_time_claim_as_text_is_refused(claim: str) -> None:
    claims = _service_claims()
    token = _signed(protocol.SERVICE_TOKEN_TYPE, {**claims, claim: str(claims[claim])})
    with pytest.raises(ProtocolError, match=f"{claim} claim must be a NumericDate"):
        protocol.check_service_token(token, PUBLIC, own_region="BJ", caller_region="TJ")


def test_a_statement_with_its_time_as_text_is_refused() -> None:
    now = int(utcnow().timestamp())
    claims = {"iss": "https://bj.example", "region": "BJ", "iat": now, "answer": None}
    assert protocol.check_statement(_signed(protocol.PEER_ANSWER_TYPE, claims), PUBLIC, region="BJ")["iat"] == now
    as_text = _signed(protocol.PEER_ANSWER_TYPE, {**claims, "iat": str(now)})
    with pytest.raises(ProtocolError, match="iat claim must be a NumericDate"):
        protocol.check_statement(as_text, PUBLIC, region="BJ")
