"""The pieces of the peer protocol that need no network: the circuit breaker, service tokens and statements."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.breaker import Breaker, BreakerState
from registry.db import utcnow
from registry.errors import CircuitOpen, ProtocolError
from registry.federation import protocol


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(breaker: Breaker) -> BreakerState:
    return breaker.state  # read through a call: the state changes with the clock, between two reads


def test_the_breaker_opens_after_failures_in_a_row_and_lets_one_trial_through_after_the_pause() -> None:
    clock = Clock()
    breaker = Breaker(threshold=3, reset_after=10.0, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.failed()
    breaker.before_call()
    breaker.succeeded()  # a success in between: the count starts again
    for _ in range(3):
        breaker.before_call()
        breaker.failed()
    assert state(breaker) is BreakerState.open
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 9.9
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 0.1
    assert state(breaker) is BreakerState.half_open
    breaker.before_call()  # the one trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # nobody else while it runs
    breaker.failed()
    assert state(breaker) is BreakerState.open  # a failed trial re-opens at once
    clock.now += 10
    breaker.before_call()
    breaker.succeeded()
    assert state(breaker) is BreakerState.closed
    breaker.before_call()


def test_an_abandoned_call_frees_the_trial_only_when_it_was_the_trial() -> None:
    clock = Clock()
    breaker = Breaker(threshold=1, reset_after=10.0, clock=clock)
    stale = breaker.before_call()  # goes out while the circuit is closed, and hangs
    assert stale is False
    breaker.before_call()
    breaker.failed()  # another call fails: open
    clock.now += 10
    trial = breaker.before_call()
    assert trial is True
    breaker.abandoned(trial=stale)  # the hanging call is given up: the trial under way is still the only one
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    breaker.abandoned(trial=trial)  # the trial itself is given up: the next call may be the trial
    assert breaker.before_call() is True
    assert state(breaker) is BreakerState.half_open
    breaker.succeeded()
    assert state(breaker) is BreakerState.closed


KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
PUBLIC = jwt.PyJWK.from_dict(
    {"kty": "OKP", "crv": "Ed25519", "x": jwt.utils.base64url_encode(KEY.public_key().public_bytes_raw()).decode()}
)


def signer(key: Ed25519PrivateKey = KEY, region: str = "TJ", **extra: Any) -> protocol.Signer:
    def sign(typ: str, claims: dict[str, Any]) -> str:
        payload = {"iss": "https://tj.example", "region": region, "iat": int(utcnow().timestamp()), **claims, **extra}
        return jwt.encode(payload, key, algorithm="EdDSA", headers={"kid": "k1", "typ": typ})

    return sign


def test_a_service_token_checks_out_only_for_its_audience_region_and_key() -> None:
    token = protocol.service_token(signer(), own_region="TJ", peer_region="BJ")
    assert protocol.header_of(token, protocol.SERVICE_TOKEN_TYPE) == "k1"
    assert protocol.unverified_region(token) == "TJ"
    claims = protocol.check_service_token(token, PUBLIC, own_region="BJ", caller_region="TJ")
    assert claims["sub"] == "node:TJ"
    with pytest.raises(ProtocolError, match="Audience"):
        protocol.check_service_token(token, PUBLIC, own_region="HE", caller_region="TJ")
    with pytest.raises(ProtocolError, match="region"):
        protocol.check_service_token(token, PUBLIC, own_region="BJ", caller_region="HE")
    forged = protocol.service_token(signer(OTHER_KEY), own_region="TJ", peer_region="BJ")
    with pytest.raises(ProtocolError, match="Signature"):
        protocol.check_service_token(forged, PUBLIC, own_region="BJ", caller_region="TJ")


@pytest.mark.parametrize(
    ("claims", "complaint"),
    [
        ({"exp": int(utcnow().timestamp()) - 60}, "expired"),
        ({"exp": int(utcnow().timestamp()) + 3600}, "too long"),
        ({"region": "HE"}, "region"),
    ],
)
def test_a_service_token_that_lives_too_long_or_lies_about_its_region_is_refused(
    claims: dict[str, Any], complaint: str
) -> None:
    now = int(utcnow().timestamp())
    base = {"sub": "node:TJ", "aud": protocol.node_audience("BJ"), "exp": now + 60, "jti": str(uuid.uuid4())}
    token = signer()(protocol.SERVICE_TOKEN_TYPE, {**base, **claims})
    with pytest.raises(ProtocolError, match=complaint):
        protocol.check_service_token(token, PUBLIC, own_region="BJ", caller_region="TJ")


def test_headers_are_checked_before_any_key_is_looked_up() -> None:
    token = protocol.service_token(signer(), own_region="TJ", peer_region="BJ")
    with pytest.raises(ProtocolError, match="typ"):
        protocol.header_of(token, protocol.PEER_ANSWER_TYPE)  # a service token is not an answer
    hs256 = jwt.encode({"region": "TJ"}, "secret-secret-secret-secret-secret!", algorithm="HS256")
    with pytest.raises(ProtocolError, match="algorithm"):
        protocol.header_of(hs256, protocol.SERVICE_TOKEN_TYPE)
    with_jku = jwt.encode({}, KEY, algorithm="EdDSA", headers={"kid": "k1", "typ": "peer+jwt", "jku": "https://x"})
    with pytest.raises(ProtocolError, match="never trusted"):
        protocol.header_of(with_jku, protocol.SERVICE_TOKEN_TYPE)
    with pytest.raises(ProtocolError, match="malformed"):
        protocol.header_of("not.a.jws", protocol.SERVICE_TOKEN_TYPE)


def test_a_statement_counts_only_from_its_region_and_only_while_fresh() -> None:
    statement = signer(region="BJ")(protocol.PEER_ANSWER_TYPE, {"nonce": "n", "answer": {"status": 404}})
    assert protocol.check_statement(statement, PUBLIC, region="BJ")["answer"] == {"status": 404}
    with pytest.raises(ProtocolError, match="signed for region BJ"):
        protocol.check_statement(statement, PUBLIC, region="HE")
    stale = signer(region="BJ", iat=int(utcnow().timestamp()) - 600)(protocol.PEER_ANSWER_TYPE, {"answer": None})
    with pytest.raises(ProtocolError, match="fresh"):
        protocol.check_statement(stale, PUBLIC, region="BJ")
    tampered = statement[:-3] + ("AAA" if not statement.endswith("AAA") else "BBB")
    with pytest.raises(ProtocolError):
        protocol.check_statement(tampered, PUBLIC, region="BJ")


def test_only_a_nodes_own_key_speaks_for_it() -> None:
    assert protocol.is_node_key({"key_use": "access_token", "status": "active"})
    assert protocol.is_node_key({"key_use": "access_token", "status": "retired"})
    assert not protocol.is_node_key({"key_use": "access_token", "status": "compromised"})
    assert not protocol.is_node_key({"key_use": "certificate", "status": "active", "issuer_code": "BJ-AI"})
