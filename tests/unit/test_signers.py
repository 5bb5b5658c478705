"""The one signing interface: each algorithm signs and verifies JWS signatures, publishes its key as a JWK, and refuses
a header naming another algorithm than its key's."""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc import jws as joserfc_jws
from joserfc.jwk import JWKRegistry

from registry.keys import jws, signers
from registry.keys.signers import ED25519, ES256, KeySigner, SignatureCheck


def _pair(algorithm: signers.Algorithm, kid: str = "k1") -> tuple[KeySigner, SignatureCheck, bytes]:
    private, public = algorithm.generate()
    signer = KeySigner(kid, algorithm, algorithm.signing_key(private))
    return signer, SignatureCheck(algorithm, algorithm.public_key(public)), public


@pytest.mark.parametrize("algorithm", [ED25519, ES256], ids=["Ed25519", "ES256"])
def test_a_signed_token_verifies_with_its_check_its_jwk_and_joserfc(algorithm: signers.Algorithm) -> None:
    signer, check, public = _pair(algorithm)
    token = jws.encode({"iss": "https://registry.test/v1/issuers/A", "n": "王伟"}, signer, typ="vc+jwt")
    assert jws.unverified_header(token) == {"alg": algorithm.name, "kid": "k1", "typ": "vc+jwt"}
    assert jws.decode(token, check)["n"] == "王伟"
    jwk: dict[str, str | list[str]] = {**algorithm.jwk(public), "kid": "k1", "alg": algorithm.name}
    from_jwk = signers.check_for_jwk(jwk)
    assert from_jwk is not None
    assert from_jwk.algorithm is algorithm
    assert jws.decode(token, from_jwk)["iss"].endswith("/A")
    verified = joserfc_jws.deserialize_compact(token, JWKRegistry.import_key(jwk), algorithms=[algorithm.name])
    assert json.loads(verified.payload)["n"] == "王伟"


def test_es256_signatures_are_raw_r_and_s_and_deterministic() -> None:
    signer, check, _ = _pair(ES256)
    signature = signer.sign(b"data")
    assert len(signature) == 64
    assert signer.sign(b"data") == signature  # RFC 6979: a list signed twice has one ETag
    assert check.verify(signature, b"data", alg="ES256")
    assert not check.verify(signature, b"other", alg="ES256")
    assert not check.verify(signature[:-1], b"data", alg="ES256")


def test_a_check_refuses_an_algorithm_its_key_does_not_sign_with() -> None:
    signer, check, _ = _pair(ED25519)
    signature = signer.sign(b"data")
    assert check.verify(signature, b"data", alg="Ed25519")
    assert check.verify(signature, b"data", alg="EdDSA")  # what Ed25519 signatures said before RFC 9864
    for alg in ("ES256", "HS256", "none", None):
        assert not check.verify(signature, b"data", alg=alg)
    es256_signer, es256_check, _ = _pair(ES256)
    assert not es256_check.verify(es256_signer.sign(b"data"), b"data", alg="EdDSA")


def test_decoding_refuses_tampering_unknown_critical_headers_and_a_foreign_alg() -> None:
    signer, check, _ = _pair(ED25519)
    token = jws.encode({"a": 1}, signer, typ="vc+jwt")
    header, payload, signature = token.split(".")
    tampered = jws.b64url(json.dumps({"a": 2}).encode()).decode()
    with pytest.raises(ValueError, match="does not verify"):
        jws.decode(f"{header}.{tampered}.{signature}", check)
    with pytest.raises(ValueError, match="not base64url"):  # padding is not base64url (RFC 7515 §2)
        jws.decode(f"{header}.{payload}.{signature}=", check)
    critical = jws.protected_header(alg="Ed25519", kid="k1", typ="vc+jwt", crit=["exp"]).decode()
    with pytest.raises(ValueError, match="critical"):
        jws.decode(f"{critical}.{payload}.{signature}", check)
    foreign = jws.protected_header(alg="ES256", kid="k1", typ="vc+jwt").decode()
    resigned = jws.b64url(signer.sign(f"{foreign}.{payload}".encode())).decode()
    with pytest.raises(ValueError, match="not one this key signs with"):
        jws.decode(f"{foreign}.{payload}.{resigned}", check)


def test_a_jwk_whose_alg_contradicts_its_key_type_is_no_key() -> None:
    _, _, public = _pair(ED25519)
    assert signers.check_for_jwk({**ED25519.jwk(public), "alg": "ES256"}) is None
    assert signers.check_for_jwk({**ED25519.jwk(public), "alg": "EdDSA"}) is not None
    assert signers.check_for_jwk({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}) is None
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    assert signers.check_for_jwk({"kty": "EC", "crv": "P-256", "x": str(p384.x), "y": str(p384.y)}) is None


def test_stored_names_map_to_algorithms() -> None:
    assert signers.algorithm("EdDSA") is ED25519  # rows made before RFC 9864
    assert signers.algorithm("Ed25519") is ED25519
    assert signers.algorithm("ES256") is ES256
    with pytest.raises(ValueError, match="unknown signature algorithm"):
        signers.algorithm("SM2")


@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 420, 4096])
def test_ed25519_signs_through_libsodium_the_bytes_openssl_makes(length: int) -> None:
    """Ed25519 is deterministic (RFC 8032): the faster libsodium path must give exactly what cryptography's OpenSSL
    gives, over messages of every size around the 64-byte signature it strips from libsodium's signed message."""
    private, public = ED25519.generate()
    key = ED25519.signing_key(private)
    assert isinstance(key, Ed25519PrivateKey)
    message = os.urandom(length)
    signature = KeySigner("k", ED25519, key).sign(message)
    assert signature == key.sign(message)
    assert len(signature) == 64
    Ed25519PublicKey.from_public_bytes(public).verify(signature, message)  # raises if it does not verify
    assert ED25519.sign(key, message) == signature
    assert KeySigner("k", ED25519, key).portable().signer().sign(message) == signature


def test_a_signer_never_shows_its_key() -> None:
    signer, _, _ = _pair(ED25519)
    assert "_sign" not in repr(signer)
    assert "secret" not in repr(signer)


def test_a_signer_named_otherwise_signs_the_same_without_preparing_its_key_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer, _, _ = _pair(ED25519)

    def refuse(key: object) -> None:
        raise AssertionError("the key was prepared again")

    monkeypatch.setattr(ED25519, "signing_function", refuse)
    named = signer.named("https://registry.test/v1/issuers/A/keys/k1")
    assert named.kid.endswith("/k1")
    assert named.sign(b"data") == signer.sign(b"data")
